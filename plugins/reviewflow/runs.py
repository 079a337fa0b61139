"""Run keys: the stable, path-safe name under which a DAG run's outputs are stored."""

from __future__ import annotations

import re
from typing import Any


def run_key_of(run_id: str) -> str:
    """A path- and S3-safe key for ``run_id`` (the same on every retry of the run)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", run_id).strip("-")


def run_key(context: Any) -> str:
    """The run key of the DAG run in an Airflow task ``context``."""
    return run_key_of(context["dag_run"].run_id)
