"""Load the project's DAGs against a throw-away data root."""

from __future__ import annotations

import json
import socket
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


@pytest.fixture
def rollout_root(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The data root with a curated snapshot and its features (run ``train-2``); stops the endpoint afterwards."""
    from include.features.splits import split_of
    from include.sample_data import COLUMNS, SampleSpec, curated_records, generate_rows, write_curated_snapshot
    from include.serving.control import stop_server
    from include.serving.state import DEFAULT_ENDPOINT_NAME, EndpointPaths
    from include.training.sample_features import write_features

    with socket.socket() as probe:  # a free port; the server falls back to another if it is taken meanwhile
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("REVIEWFLOW_ENDPOINT_PORT", str(probe.getsockname()[1]))
    rows = list(generate_rows(SampleSpec(rows=1500, seed=7)))
    snapshot = write_curated_snapshot(data_root / "curated" / "reviews" / "snapshot=s1", curated_records(rows))
    features = write_features(data_root / "features" / "train-2", rows, [split_of(r[COLUMNS.index("review_id")]) for r in rows])
    manifest = json.loads((features / "manifest.json").read_text())
    (features / "manifest.json").write_text(json.dumps({**manifest, "snapshot_uri": snapshot}))
    yield data_root
    stop_server(EndpointPaths.for_endpoint(data_root, DEFAULT_ENDPOINT_NAME))
