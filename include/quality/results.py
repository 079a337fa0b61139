"""Outcome of one check, the unit every report row, alert and gate decision is made of."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from include.quality.suite import Constraint, Level

Status = Literal["Success", "Failure"]


@dataclass(frozen=True)
class CheckResult:
    """One evaluated constraint, anomaly check or bias metric.

    :param name: e.g. ``isUnique(review_id)``.
    :param kind: ``constraint``, ``anomaly`` or ``bias``.
    :param metric: the Deequ metric key the check asserts on.
    :param observed: the metric's value (``None`` when it could not be computed).
    :param threshold: the bound, as text (``>= 0.99``).
    :param line: the suite line that declared the check.
    """

    name: str
    kind: str
    level: Level
    status: Status
    metric: str
    observed: float | None
    threshold: str
    message: str = ""
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_constraint(constraint: Constraint, value: float | None) -> CheckResult:
    """Apply ``constraint``'s bounds to its metric ``value``."""
    passed = constraint.holds(value)
    if passed:
        message = ""
    elif value is None:
        message = f"{constraint.metric.key} has no value (empty or all-null input)"
    else:
        message = f"Value: {value:g} does not meet the constraint requirement {constraint.bounds}"
    return CheckResult(
        name=constraint.name,
        kind="constraint",
        level=constraint.level,
        status="Success" if passed else "Failure",
        metric=constraint.metric.key,
        observed=value,
        threshold=constraint.threshold,
        message=message,
        line=constraint.line,
    )


def count_results(results: list[CheckResult]) -> dict[str, int]:
    """Totals: ``total``, ``passed``, ``error_failures``, ``warning_failures``."""
    failures = [r for r in results if r.status == "Failure"]
    return {
        "total": len(results),
        "passed": len(results) - len(failures),
        "error_failures": sum(r.level == "Error" for r in failures),
        "warning_failures": sum(r.level == "Warning" for r in failures),
    }
