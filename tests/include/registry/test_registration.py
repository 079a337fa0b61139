"""What a version is registered with, assembled from the run summaries; the registry's section of the summary."""

from __future__ import annotations

from typing import Any

import pytest

from include.registry.registration import registration, registration_metrics, reused_from
from include.registry.run_summary import RunSummaryError, registry_section, require_summary

URI = "/d/reports/run-2/summary.json"
PER_CLASS = {"negative": {"f1": 0.6}, "positive": {"f1": 0.8}}
SUMMARY: dict[str, Any] = {
    "features": {"manifest_uri": "/d/features/run-2/manifest.json"},
    "training": {"model_uri": "/d/models/run-2/model", "metrics_uri": "/d/models/run-2/metrics.json",
                 "validation_macro_f1": 0.71},
    "evaluation": {"challenger": {"macro_f1": 0.7, "accuracy": 0.75, "per_class": PER_CLASS},
                   "champion_macro_f1": None, "delta_macro_f1": None, "test_rows": 200,
                   "evaluation_uri": "/d/models/run-2/evaluation.json"},
}


def assemble(summary: dict[str, Any], snapshot: str = "snap-1") -> Any:
    return registration(
        summary=summary, summary_uri=URI, snapshot=snapshot, curated_uri=f"/d/curated/reviews/snapshot={snapshot}",
        metrics_file={"hyperparameters": {"epochs": 2}}, ingest_summary=None,
        ingest_summary_uri="/d/reports/snap-1/summary.json", commit="abc", dag_id="reviews_train",
        run_id="manual__2", run_key="run-2",
    )


def test_the_model_its_metrics_lineage_and_params() -> None:
    assembled = assemble(SUMMARY)
    assert assembled.model_uri == "/d/models/run-2/model" and assembled.params == {"epochs": 2}
    assert assembled.metrics == {  # no champion: its figures are left out
        "test_macro_f1": 0.7, "test_accuracy": 0.75, "validation_macro_f1": 0.71, "test_rows": 200,
        "test_f1_negative": 0.6, "test_f1_positive": 0.8,
    }
    assert assembled.lineage["evaluation"] == "/d/models/run-2/evaluation.json"
    assert assembled.lineage["source_snapshot"] == "snap-1" and assembled.lineage["run_key"] == "run-2"


def test_against_a_champion_the_interval_of_the_change_is_recorded() -> None:
    evaluation = {**SUMMARY["evaluation"], "champion_macro_f1": 0.65, "delta_macro_f1": 0.05,
                  "delta_macro_f1_ci95": [0.01, 0.09]}
    metrics = registration_metrics(SUMMARY["training"], evaluation)
    assert (metrics["champion_test_macro_f1"], metrics["delta_test_macro_f1"]) == (0.65, 0.05)
    assert (metrics["delta_test_macro_f1_ci95_low"], metrics["delta_test_macro_f1_ci95_high"]) == (0.01, 0.09)


def test_a_missing_step_or_snapshot_is_named() -> None:
    with pytest.raises(RunSummaryError, match=f"{URI} has no 'evaluation' section: run the evaluate task of run run-2 first"):
        assemble({k: v for k, v in SUMMARY.items() if k != "evaluation"})
    with pytest.raises(ValueError, match="resolve_snapshot gave none"):
        assemble(SUMMARY, snapshot="")
    with pytest.raises(RunSummaryError, match=f"{URI} does not exist: run the training and evaluate tasks of run run-2"):
        require_summary(None, URI, "run-2")


def test_a_model_reused_from_another_run_is_that_runs() -> None:
    def cached(status: str, from_run: str | None) -> dict[str, Any]:
        return {"training": {**SUMMARY["training"], "cache": {"status": status, "from_run": from_run}}}

    assert reused_from(cached("hit", "run-1"), "run-2") == "run-1"
    assert reused_from(cached("hit", "run-2"), "run-2") is None  # a rerun of the computing run
    assert reused_from(cached("miss", None), "run-2") is None and reused_from(SUMMARY, "run-2") is None


def test_the_registry_section_keeps_what_earlier_steps_wrote() -> None:
    summary = {"registry": {"version": "3", "gate": {"passed": True}}}
    section = registry_section(summary, {"version": "3", "status": "Approved"}, role="challenger")
    assert section == {"version": "3", "gate": {"passed": True}, "status": "Approved", "role": "challenger"}
