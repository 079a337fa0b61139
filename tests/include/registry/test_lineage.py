"""Lineage fields on every version: built from the run summaries; the git commit of the checkout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.config import REPO_ROOT
from include.registry.lineage import LINEAGE_FIELDS, build_lineage, git_commit, model_chain
from include.registry.run_summary import RunSummaryError

SUMMARY = {
    "features": {"manifest_uri": "/d/features/run-1/manifest.json"},
    "training": {"metrics_uri": "/d/models/run-1/metrics.json"},
    "evaluation": {"evaluation_uri": "/d/models/run-1/evaluation.json"},
}


def _lineage(**overrides: object) -> dict[str, str]:
    arguments = {
        "run_summary": SUMMARY, "run_summary_uri": "/d/reports/run-1/summary.json", "snapshot": "snap-1",
        "curated_uri": "/d/curated/reviews/snapshot=snap-1",
        "ingest_summary": {"quality": {"report_json": "/d/reports/snap-1/quality/report.json"}},
        "ingest_summary_uri": "/d/reports/snap-1/summary.json", "training_params": {"epochs": 2, "seed": 42},
        "commit": "abc123", "dag_id": "reviews_train", "run_id": "manual__1", "run_key": "manual__1",
    }
    return build_lineage(**(arguments | overrides))  # type: ignore[arg-type]


def test_every_lineage_field_is_filled() -> None:
    lineage = _lineage()
    assert tuple(lineage) == LINEAGE_FIELDS and all(isinstance(v, str) and v for v in lineage.values())
    assert lineage["quality_report"] == "/d/reports/snap-1/quality/report.json"
    assert lineage["feature_manifest"] == "/d/features/run-1/manifest.json"
    assert json.loads(lineage["training_params"]) == {"epochs": 2, "seed": 42}
    assert lineage["source_snapshot"] == "snap-1" and lineage["airflow_run_id"] == "manual__1"


def test_missing_quality_report_is_named_and_missing_sections_fail() -> None:
    assert _lineage(ingest_summary=None)["quality_report"] == "none: /d/reports/snap-1/summary.json has no 'quality' section"
    with pytest.raises(RunSummaryError, match=r"summary.json has no 'evaluation' section"):
        _lineage(run_summary={k: v for k, v in SUMMARY.items() if k != "evaluation"})


def test_git_commit(tmp_path: Path) -> None:
    commit = git_commit(REPO_ROOT)
    assert len(commit.removesuffix("+dirty")) == 40
    assert git_commit(tmp_path) == "unknown"


def test_model_chain_names_the_rollout_that_promoted_the_version() -> None:
    version = {"name": "m", "version": "3", "model_uri": "/d/models/run-1/model", "status": "Approved",
               "approved_by": "alice", "aliases": ["champion"], "lineage": {"source_snapshot": "ingest-1"}}
    rollouts = {
        "rollout-1": {"rollout": {"conclusion": {"action": "rollback", "winner_version": "2", "reason": "worse"}}},
        "rollout-2": {"rollout": {"conclusion": {"action": "promote", "winner_version": "3", "reason": "P(best) 0.97"},
                                  "requests_to_decision": 1600}},
    }
    links = dict(model_chain(version, {"registry": {"approval_recorded_at": "2026-11-29T10:00:00+00:00"}}, None, rollouts))
    assert links["rollout"] == "run rollout-2: promote after 1600 requests (P(best) 0.97)"
    assert links["approval"].startswith("by alice at 2026-11-29T10:00:00+00:00")
    assert "checksum not recorded" in links["source file"]  # an ingest summary from before checksums were kept
    assert dict(model_chain(version, None, None, {}))["rollout"] == "no rollout promoted it"
