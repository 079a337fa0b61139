"""Load the project's DAGs against a throw-away data root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ``REVIEWFLOW_DATA_ROOT`` (set before the DAG files are parsed); sources may be read
    from anywhere under the test's ``tmp_path``."""
    root = tmp_path / "data"
    monkeypatch.setenv("REVIEWFLOW_BACKEND", "local")
    monkeypatch.setenv("REVIEWFLOW_DATA_ROOT", str(root))
    monkeypatch.setenv("REVIEWFLOW_ALLOWED_ROOTS", str(tmp_path))
    monkeypatch.setenv("REVIEWFLOW_ALERT_LOG", str(root / "alerts.jsonl"))
    # Airflow 3.3.2's dag.test() cannot finish a successful run of a DAG with deadline alerts;
    # tests/dags/test_deadlines.py parses the DAGs with them.
    monkeypatch.setenv("REVIEWFLOW_DEADLINE_ALERTS", "off")
    yield root


@pytest.fixture
def dag_bag(data_root: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))
