"""Row accounting of an ingestion: every input row is accepted, excluded or rejected."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


class RejectedShareError(ValueError):
    """The input had no usable rows, or too large a share of them was rejected."""

    def __init__(self, message: str, counts: IngestCounts) -> None:
        super().__init__(message)
        self.counts = counts


@dataclass(frozen=True)
class IngestCounts:
    """How the input rows of one ingestion were classified.

    ``input_rows == accepted + excluded + rejected`` always holds; ``excluded`` rows are
    valid rows outside the requested categories, ``rejected_by_reason`` sums to ``rejected``.
    """

    accepted: int
    excluded: int
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

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
    def from_outcomes(cls, outcomes: Iterable[tuple[str, int]]) -> IngestCounts:
        """Build from ``(outcome, rows)`` pairs: ``accepted``, ``excluded`` or a reject reason."""
        accepted = excluded = 0
        rejected: dict[str, int] = {}
        for outcome, rows in outcomes:
            if outcome == "accepted":
                accepted += int(rows)
            elif outcome == "excluded":
                excluded += int(rows)
            else:
                rejected[outcome] = rejected.get(outcome, 0) + int(rows)
        return cls(accepted, excluded, dict(sorted(rejected.items())))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "rejected": self.rejected,
            "input_rows": self.input_rows,
            "rejected_share": round(self.rejected_share, 6),
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> IngestCounts:
        return cls(payload["accepted"], payload["excluded"], dict(payload["rejected_by_reason"]))


def check_counts(counts: IngestCounts, source: str, max_rejected_share: float) -> None:
    """Fail when the input had no rows or the rejected share exceeds ``max_rejected_share``."""
    if counts.input_rows == 0:
        raise RejectedShareError(f"{source}: no data rows after the header", counts)
    if counts.accepted == 0 and counts.excluded > 0:
        raise RejectedShareError(f"{source}: no rows in the requested categories", counts)
    if counts.rejected_share > max_rejected_share:
        reasons = "; ".join(f"{reason}: {rows}" for reason, rows in counts.rejected_by_reason.items())
        raise RejectedShareError(
            f"{source}: rejected {counts.rejected} of {counts.input_rows} rows "
            f"({counts.rejected_share:.1%}), above the {max_rejected_share:.1%} threshold ({reasons})",
            counts,
        )
