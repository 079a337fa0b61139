"""The run summary: one JSON document per run key (``<data root>/reports/<run key>/summary.json``), a section
per stage, which each task writes through its own connection."""

from __future__ import annotations

from typing import Any

from include.config import Settings
from include.uris import join_uri
from reviewflow.backends import storage_for


def run_summary_uri(settings: Settings, run_key: str) -> str:
    """Where the run summary JSON of ``run_key`` lives: ``<root>/reports/<run_key>/summary.json``."""
    return join_uri(settings.data_root, "reports", run_key, "summary.json")


def read_run_summary(
    settings: Settings, run_key: str, aws_conn_id: str | None, *, region_name: str | None = None
) -> dict[str, Any] | None:
    """The run summary of ``run_key``, or ``None`` before any stage wrote it."""
    uri = run_summary_uri(settings, run_key)
    storage = storage_for(uri, aws_conn_id, region_name=region_name)
    return storage.read_json(uri) if storage.exists(uri) else None


def list_run_summaries(settings: Settings, aws_conn_id: str | None) -> dict[str, dict[str, Any]]:
    """Every run summary under ``<root>/reports/``, by run key."""
    reports = join_uri(settings.data_root, "reports")
    storage = storage_for(reports, aws_conn_id)
    keys = [name.split("/")[0] for name in storage.list_files(reports) if name.endswith("/summary.json") and name.count("/") == 1]
    return {key: storage.read_json(join_uri(reports, key, "summary.json")) for key in keys}


def update_run_summary(
    settings: Settings,
    run_key: str,
    section: str,
    payload: dict[str, Any],
    aws_conn_id: str | None,
    *,
    region_name: str | None = None,
) -> str:
    """Set ``section`` of the run summary to ``payload`` (a retry overwrites its own section)."""
    uri = run_summary_uri(settings, run_key)
    summary = read_run_summary(settings, run_key, aws_conn_id, region_name=region_name) or {"run_key": run_key}
    summary[section] = payload
    storage_for(uri, aws_conn_id, region_name=region_name).write_json(uri, summary)
    return uri
