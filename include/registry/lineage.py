"""Lineage recorded on every model version: where the data, features, parameters and code came from."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from include.registry.run_summary import summary_section

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
    :raises RunSummaryError: naming the summary file and section when a required section is missing.
    """
    features = summary_section(run_summary, "features", run_summary_uri)
    training = summary_section(run_summary, "training", run_summary_uri)
    evaluation = summary_section(run_summary, "evaluation", run_summary_uri)
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


def _cache_note(section: Mapping[str, Any]) -> str:
    cache = section.get("cache") or {}
    return f" (cache hit: computed by run {cache['from_run']})" if cache.get("status") == "hit" else ""


def model_chain(
    version: Mapping[str, Any],
    training_summary: Mapping[str, Any] | None,
    ingest_summary: Mapping[str, Any] | None,
    rollout_summaries: Mapping[str, Mapping[str, Any]],
) -> list[tuple[str, str]]:
    """The chain behind a model version as (link, what) lines, source file first, rollout last.

    :param version: the registry's version (``ModelVersion.to_dict()``: lineage, approval, aliases, outcome).
    :param training_summary: the summary of the run that registered it (``lineage.run_key``).
    :param ingest_summary: the summary of the ingest run whose snapshot it was trained on (``lineage.source_snapshot``).
    :param rollout_summaries: run key → summary of the rollout runs (those whose conclusion names this version count).
    """
    lineage = version.get("lineage") or {}
    training = training_summary or {}
    ingest = (ingest_summary or {}).get("ingest") or {}
    quality = (ingest_summary or {}).get("quality") or {}
    missing = "not recorded"
    counts = ingest.get("counts") or {}
    lines = [
        ("source file", f"{ingest.get('source_uri', missing)} (checksum {ingest.get('source_checksum') or missing}); "
                        f"staged at {ingest.get('raw_uri', missing)}"),
        ("snapshot", f"{lineage.get('source_snapshot', missing)} at {lineage.get('source_curated_uri', missing)}: "
                     + (f"{counts['input_rows']} rows in = {counts['accepted']} accepted + {counts['excluded']} excluded + "
                        f"{counts['rejected']} rejected" if counts else f"row counts {missing}")),
        ("quality", f"{quality.get('gate', missing)}, {quality.get('passed', '?')}/{quality.get('total', '?')} checks "
                    f"({quality.get('engine', '?')} engine): {lineage.get('quality_report', missing)}{_cache_note(quality)}"),
    ]
    features = training.get("features") or {}
    rows = features.get("rows") or {}
    lines.append(("features", f"{lineage.get('feature_manifest', missing)}"
                  + (" (" + ", ".join(f"{split} {n}" for split, n in rows.items()) + ")" if rows else "")
                  + _cache_note(features)))
    model = training.get("training") or {}
    lines.append(("training", f"params {lineage.get('training_params', missing)}; code {lineage.get('git_commit', missing)}; "
                              f"run {lineage.get('airflow_dag_id', '?')} {lineage.get('airflow_run_id', '?')}{_cache_note(model)}"))
    evaluation = training.get("evaluation") or {}
    lines.append(("evaluation", f"{lineage.get('evaluation', missing)}: test macro-F1 {evaluation.get('challenger_macro_f1', '?')}"
                                f"{_cache_note(evaluation)}"))
    registry = training.get("registry") or {}
    lines.append(("model version", f"{version.get('name')} v{version.get('version')} at {version.get('model_uri')}; "
                                   f"{version.get('status')}, aliases {', '.join(version.get('aliases') or []) or 'none'}"))
    lines.append(("approval", f"by {version.get('approved_by') or 'nobody yet'}"
                              f" at {registry.get('approval_recorded_at') or missing}: {version.get('approval_comment') or ''}"))
    promoted = [
        (key, summary["rollout"]) for key, summary in sorted(rollout_summaries.items())
        if (summary.get("rollout") or {}).get("conclusion", {}).get("winner_version") == version.get("version")
    ]
    if promoted:
        key, rollout = promoted[-1]
        conclusion = rollout["conclusion"]
        lines.append(("rollout", f"run {key}: {conclusion.get('action')} after {rollout.get('requests_to_decision') or rollout.get('requests')} "
                                 f"requests ({conclusion.get('reason')})"))
    else:
        outcome = version.get("rollout_outcome")
        lines.append(("rollout", f"no rollout promoted it{f' (outcome: {outcome})' if outcome else ''}"))
    return lines
