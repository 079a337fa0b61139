"""Metrics history and anomaly checks, after Deequ's file-system metrics repository.

Each run stores one record, ``<metrics root>/<dataset>/<snapshot>.json``::

    {"dataset": "reviews", "snapshot": "2026-11-26", "recorded_at": "2026-11-26T03:00:00+00:00",
     "engine": "spark", "metrics": {"Size(*)": 1000.0, "Completeness(review_id)": 1.0, ...}}

A retry of the same snapshot overwrites its own record. Anomaly checks compare the
current metrics with the most recently recorded *other* snapshot.
"""

from __future__ import annotations

import math
from typing import Any

from include.quality.results import CheckResult
from include.quality.suite import AnomalyCheck, within


def metrics_record(
    dataset: str, snapshot: str, engine: str, metrics: dict[str, float | None], recorded_at: str
) -> dict[str, Any]:
    """The history record of one run."""
    return {"dataset": dataset, "snapshot": snapshot, "recorded_at": recorded_at, "engine": engine, "metrics": metrics}


def previous_record(history: list[dict[str, Any]], snapshot: str) -> dict[str, Any] | None:
    """The latest record (by ``recorded_at``) of a snapshot other than ``snapshot``."""
    earlier = [record for record in history if record.get("snapshot") != snapshot]
    return max(earlier, key=lambda record: record["recorded_at"]) if earlier else None


def _change(strategy: str, current: float, previous: float) -> float:
    if strategy == "AbsoluteChangeStrategy":
        return current - previous
    if previous == 0:
        return 1.0 if current == 0 else math.inf
    return current / previous


def evaluate_anomalies(
    anomalies: tuple[AnomalyCheck, ...], metrics: dict[str, float | None], previous: dict[str, Any] | None
) -> list[CheckResult]:
    """Apply each anomaly strategy to the current metric against ``previous``'s.

    Without a previous value (first run, or the metric was not recorded) the check passes
    and says so; a current metric without a value fails.
    """
    results = []
    for anomaly in anomalies:
        key = anomaly.metric.key
        current = metrics.get(key)
        before = None if previous is None else previous["metrics"].get(key)
        if before is None:
            status, observed, message = "Success", None, "no earlier snapshot with this metric in the history"
        elif current is None:
            status, observed, message = "Failure", None, f"{key} has no value in this run"
        else:
            observed = _change(anomaly.strategy, current, before)
            passed = within(observed, anomaly.max_rate_decrease, anomaly.max_rate_increase)
            status = "Success" if passed else "Failure"
            message = f"{key}: {current:g} now, {before:g} in snapshot {previous['snapshot']}"  # type: ignore[index]
        results.append(
            CheckResult(
                name=anomaly.name,
                kind="anomaly",
                level=anomaly.level,
                status=status,  # type: ignore[arg-type]
                metric=key,
                observed=observed,
                threshold=anomaly.threshold,
                message=message,
                line=anomaly.line,
            )
        )
    return results
