"""Row accounting of an ingestion: every input row is accepted, excluded or rejected."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from include.errors import BadInputError


class RejectedShareError(BadInputError):
    """The input had no usable rows, or too large a share of them was rejected."""

    def __init__(self, message: str, counts: IngestCounts) -> None:
        super().__init__(message)
        self.counts = counts


@dataclass(frozen=True)
class IngestCounts:
    """How the input rows of one ingestion were classified.

    ``input_rows == accepted + excluded + rejected`` always holds; ``excluded`` rows are
    valid rows outside the requested categories (``excluded_by_category`` sums to it),
    ``rejected_by_reason`` sums to ``rejected``.
    """

    accepted: int
    excluded_by_category: dict[str, int] = field(default_factory=dict)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def excluded(self) -> int:
        return sum(self.excluded_by_category.values())

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def input_rows(self) -> int:
        return self.accepted + self.excluded + self.rejected

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.input_rows if self.input_rows else 0.0

    @classmethod
    def from_outcomes(cls, outcomes: Iterable[tuple[str, str | None, int]]) -> IngestCounts:
        """Build from ``(outcome, excluded category, rows)`` rows of ``count_reviews.sql``: the outcome
        is ``accepted``, ``excluded`` (with the row's category) or a reject reason."""
        accepted = 0
        excluded: dict[str, int] = {}
        rejected: dict[str, int] = {}
        for outcome, category, rows in outcomes:
            if outcome == "accepted":
                accepted += int(rows)
            elif outcome == "excluded":
                excluded[str(category)] = excluded.get(str(category), 0) + int(rows)
            else:
                rejected[outcome] = rejected.get(outcome, 0) + int(rows)
        return cls(accepted, dict(sorted(excluded.items())), dict(sorted(rejected.items())))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "excluded": self.excluded,
            "rejected": self.rejected,
            "input_rows": self.input_rows,
            "rejected_share": round(self.rejected_share, 6),
        }


# How many of the file's categories an empty selection names (the most frequent ones).
CATEGORIES_SHOWN = 5


def check_counts(
    counts: IngestCounts, source: str, max_rejected_share: float, categories: list[str] | None = None
) -> None:
    """Fail when the input had no rows, none in the requested ``categories``, or the rejected
    share exceeds ``max_rejected_share``; each message names the DAG param to change."""
    if counts.input_rows == 0:
        raise RejectedShareError(f"{source}: no data rows after the header", counts)
    if counts.accepted == 0 and counts.excluded > 0:
        present = sorted(counts.excluded_by_category.items(), key=lambda item: (-item[1], item[0]))
        shown = ", ".join(f"{name} ({rows})" for name, rows in present[:CATEGORIES_SHOWN])
        more = f" and {len(present) - CATEGORIES_SHOWN} more" if len(present) > CATEGORIES_SHOWN else ""
        raise RejectedShareError(
            f"{source}: no rows in the requested categories {sorted(categories or [])} (param categories); "
            f"the file's {counts.excluded} valid rows are in {shown}{more}",
            counts,
        )
    if counts.rejected_share > max_rejected_share:
        reasons = "; ".join(f"{reason}: {rows}" for reason, rows in counts.rejected_by_reason.items())
        raise RejectedShareError(
            f"{source}: rejected {counts.rejected} of {counts.input_rows} rows ({counts.rejected_share:.1%}), "
            f"above the {max_rejected_share:.1%} threshold set by the param max_rejected_share ({reasons})",
            counts,
        )
