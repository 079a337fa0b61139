"""Lineage recorded on every model version: where the data, features, parameters and code came from."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LINEAGE_FIELDS = (
    "source_snapshot",
    "source_curated_uri",
    "quality_report",
    "feature_manifest",
    "training_params",
    "training_metrics",
    "evaluation",
    "git_commit",
    "airflow_dag_id",
    "airflow_run_id",
    "run_key",
)


def git_commit(repo_root: str | Path) -> str:
    """``HEAD`` of the checkout at ``repo_root`` (``+dirty`` with uncommitted changes), or ``unknown`` outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo_root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(repo_root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if status.strip() else "")


def _section(summary: Mapping[str, Any], name: str, uri: str) -> Mapping[str, Any]:
    section = summary.get(name)
    if not section:
        raise ValueError(f"{uri}: the run summary has no '{name}' section")
    return section


def build_lineage(
    *,
    run_summary: Mapping[str, Any],
    run_summary_uri: str,
    snapshot: str,
    curated_uri: str,
    ingest_summary: Mapping[str, Any] | None,
    ingest_summary_uri: str,
    training_params: Mapping[str, Any],
    commit: str,
    dag_id: str,
    run_id: str,
    run_key: str,
) -> dict[str, str]:
    """Every field of :data:`LINEAGE_FIELDS` as a string.

    :param run_summary: the training run's summary (sections ``features``, ``training``, ``evaluation``).
    :param ingest_summary: the ingest run's summary (the snapshot id is its run key); ``None`` if absent.
    :param training_params: the ``hyperparameters`` train.py recorded in ``metrics.json``.
    :raises ValueError: naming the summary file and section when a required section is missing.
    """
    features = _section(run_summary, "features", run_summary_uri)
    training = _section(run_summary, "training", run_summary_uri)
    evaluation = _section(run_summary, "evaluation", run_summary_uri)
    quality = (ingest_summary or {}).get("quality") or {}
    quality_report = quality.get("report_json") or f"none: {ingest_summary_uri} has no 'quality' section"
    return {
        "source_snapshot": snapshot,
        "source_curated_uri": curated_uri,
        "quality_report": quality_report,
        "feature_manifest": features["manifest_uri"],
        "training_params": json.dumps(dict(training_params), sort_keys=True, default=str),
        "training_metrics": training["metrics_uri"],
        "evaluation": evaluation["evaluation_uri"],
        "git_commit": commit,
        "airflow_dag_id": dag_id,
        "airflow_run_id": run_id,
        "run_key": run_key,
    }
