"""Key figures as metrics through Airflow's metrics backend (StatsD when ``[metrics] statsd_on``).

Names (after Airflow's ``statsd_prefix``, ``airflow`` by default) and what they count are listed in
docs/runbook.md; tags (``dag_id``) reach backends that take them (InfluxDB-style StatsD, Datadog).
The task runner sets the backend up before a task runs; without one these calls do nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk.observability import stats

PREFIX = "reviewflow"


def _tags(context: Any) -> dict[str, str]:
    ti = context.get("ti")
    return {"dag_id": ti.dag_id} if ti is not None else {}


def emit_ingest_counts(context: Any, counts: Mapping[str, Any]) -> None:
    """Rows in, accepted and rejected by one ingestion (``IngestCounts.to_dict()``)."""
    for name, key in (("rows_in", "input_rows"), ("rows_accepted", "accepted"), ("rows_rejected", "rejected")):
        stats.incr(f"{PREFIX}.ingest.{name}", int(counts[key]), tags=_tags(context))


def emit_quality_failures(context: Any, failed: int) -> None:
    """Quality checks that failed in one gate run (Error and Warning level)."""
    stats.incr(f"{PREFIX}.quality.checks_failed", int(failed), tags=_tags(context))


def emit_test_macro_f1(context: Any, value: float) -> None:
    """The new model's macro-F1 on its run's test split."""
    stats.gauge(f"{PREFIX}.model.test_macro_f1", float(value), tags=_tags(context))


def emit_rollout_decision(context: Any, action: str) -> None:
    """One concluded rollout: ``reviewflow.rollout.decision.<action>``."""
    stats.incr(f"{PREFIX}.rollout.decision.{action.lower()}", tags=_tags(context))


def emit_rollout_regret(context: Any, regret: float) -> None:
    """The rollout's cumulative pseudo-regret against the best arm (requests' worth of reward)."""
    stats.gauge(f"{PREFIX}.rollout.regret", float(regret), tags=_tags(context))
