"""The local registry: idempotent registration, artefacts as files, approval tags, aliases, champion lookup."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from include.config import ConfigError, load_settings
from include.registry.base import APPROVED, CHALLENGER, CHAMPION, NOT_PROMOTED, PENDING, REJECTED
from include.registry.mlflow_registry import MlflowModelRegistry, backend_uri, ui_command

LINEAGE = {"source_snapshot": "snap-1", "git_commit": "abc", "airflow_run_id": "manual__1"}
METRICS = {"test_macro_f1": 0.71, "test_accuracy": 0.74}


@pytest.fixture
def registry(registry_root: Path, model_name: str) -> MlflowModelRegistry:
    return MlflowModelRegistry.for_data_root(registry_root, model_name)


def test_registering_the_same_run_twice_returns_the_same_version(
    registry: MlflowModelRegistry, make_model: Callable[[str], Path]
) -> None:
    model = make_model("run-1")
    first = registry.register_version("run-1", str(model), METRICS, LINEAGE, {"epochs": 2})
    again = registry.register_version("run-1", f"file://{model}", METRICS, LINEAGE, {"epochs": 2})
    assert again == first
    assert (first.version, first.status, first.run_key, first.approved_by) == ("1", PENDING, "run-1", "")
    assert first.metrics == METRICS and first.lineage == LINEAGE
    runs = registry.client.search_runs([registry._experiment_id()], "tags.run_key = 'run-1'")
    assert len(runs) == 1 and runs[0].data.params == {"epochs": "2"}
    second = registry.register_version("run-2", str(make_model("run-2")), METRICS, LINEAGE)
    assert second.version == "2"
    assert [v.version for v in registry.list_versions()] == ["1", "2"]
    assert (registry.find_run("run-2"), registry.find_run("run-3")) == (second, None)


def test_model_folder_is_logged_as_plain_files(registry: MlflowModelRegistry, make_model: Callable[[str], Path]) -> None:
    model = make_model("run-files")
    version = registry.register_version("run-files", str(model), METRICS, LINEAGE)
    stored = Path(version.model_uri.removeprefix("file://"))
    assert stored.is_relative_to(registry.root / "artifacts")
    assert sorted(p.name for p in stored.iterdir()) == sorted(p.name for p in model.iterdir())
    assert (stored / "model.safetensors").read_bytes() == (model / "model.safetensors").read_bytes()
    assert not list(stored.rglob("*.pkl"))


def test_an_interrupted_registration_is_completed_not_duplicated(
    registry: MlflowModelRegistry, make_model: Callable[[str], Path]
) -> None:
    # A first try died after creating its MLflow run, before the artefacts and the version.
    registry.client.create_run(registry._experiment_id(), tags={"run_key": "run-crash"})
    version = registry.register_version("run-crash", str(make_model("run-crash")), METRICS, LINEAGE)
    runs = registry.client.search_runs([registry._experiment_id()], "tags.run_key = 'run-crash'")
    assert len(runs) == 1 and runs[0].info.run_id == registry.client.get_model_version(registry.model_name, version.version).run_id
    assert (Path(version.model_uri.removeprefix("file://")) / "config.json").is_file()


def test_approval_tags_and_aliases(registry: MlflowModelRegistry, make_model: Callable[[str], Path]) -> None:
    one = registry.register_version("run-a", str(make_model("run-a")), METRICS, LINEAGE)
    two = registry.register_version("run-b", str(make_model("run-b")), METRICS, LINEAGE)
    assert registry.champion() is None and registry.version_for_alias(CHALLENGER) is None

    approved = registry.set_approval(one.version, APPROVED, "alice", "first model")
    assert (approved.status, approved.approved_by, approved.approval_comment) == (APPROVED, "alice", "first model")
    tags = registry.client.get_model_version(registry.model_name, one.version).tags
    assert tags["approval_status"] == APPROVED and tags["approved_by"] == "alice"
    registry.set_alias(CHAMPION, one.version)
    registry.set_alias(CHALLENGER, two.version)
    assert registry.champion().version == one.version and registry.get_version(one.version).aliases == (CHAMPION,)
    registry.set_alias(CHAMPION, two.version)  # promotion moves the alias
    assert registry.get_version(two.version).aliases == (CHALLENGER, CHAMPION) and registry.get_version(one.version).aliases == ()

    with pytest.raises(ValueError, match="approval status must be one of"):
        registry.set_approval(two.version, "Maybe", "bob", "")
    with pytest.raises(ValueError, match="alias must be one of"):
        registry.set_alias("production", one.version)
    assert registry.set_approval(two.version, REJECTED, "bob", "worse on neutral").status == REJECTED


def test_rollout_outcome_and_alias_removal(registry: MlflowModelRegistry, make_model: Callable[[str], Path]) -> None:
    version = registry.register_version("run-r", str(make_model("run-r")), METRICS, LINEAGE)
    registry.set_alias(CHALLENGER, version.version)
    registry.remove_alias(CHALLENGER)
    registry.remove_alias(CHALLENGER)  # a retry: nothing left to remove
    assert registry.version_for_alias(CHALLENGER) is None
    recorded = registry.set_rollout_outcome(version.version, NOT_PROMOTED, "budget spent undecided")
    assert (recorded.rollout_outcome, recorded.rollout_reason) == (NOT_PROMOTED, "budget spent undecided")
    assert registry.get_version(version.version).to_dict()["rollout_outcome"] == NOT_PROMOTED
    with pytest.raises(ValueError, match="rollout outcome must be one of"):
        registry.set_rollout_outcome(version.version, "won", "")


def test_register_needs_a_model_folder(registry: MlflowModelRegistry, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no config.json"):
        registry.register_version("run-x", str(tmp_path), METRICS, LINEAGE)


def test_no_champion_on_a_fresh_data_root(tmp_path: Path) -> None:
    assert MlflowModelRegistry.for_data_root(tmp_path).champion() is None


def test_champion_is_a_registered_copy_of_the_model(registry_root: Path, make_model: Callable[[str], Path]) -> None:
    registry = MlflowModelRegistry.for_data_root(registry_root)  # the default model name the pipeline uses
    trained = make_model("run-champ")
    version = registry.register_version("run-champ", str(trained), METRICS, LINEAGE)
    registry.set_alias(CHAMPION, version.version)
    found = Path(registry.champion().model_uri.removeprefix("file://"))
    assert found != trained and (found / "config.json").is_file()


def test_ui_command_points_at_the_registry(tmp_path: Path) -> None:
    command = ui_command(tmp_path, port=5001)
    assert command[:2] == ["mlflow", "ui"] and backend_uri(tmp_path) in command
    assert f"sqlite:///{tmp_path.resolve()}/registry/mlflow.db" == backend_uri(tmp_path)
    assert command[-1] == "5001"


def test_a_tracking_server_holds_the_versions_and_their_artefacts(tmp_path: Path, make_model: Callable[[str], Path]) -> None:
    """REVIEWFLOW_MLFLOW_TRACKING_URI (the team stack's MLflow server): the registry goes through the
    server, which stores the versions in its own database and the model files in its artefact store."""
    from reviewflow.backends import registry_for

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = tmp_path / "server"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", (store / "artifacts").as_uri()],
        env=os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        store.mkdir()
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(0.5)
        settings = load_settings({"REVIEWFLOW_DATA_ROOT": str(tmp_path / "data"),
                                  "REVIEWFLOW_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}/"})
        registry = registry_for(settings, "served-model", aws_conn_id=None)  # MLflow: no AWS call
        version = registry.register_version("run-1", str(make_model("run-1")), METRICS, LINEAGE)
        registry.set_approval(version.version, APPROVED, "alice", "fine")
        registry.set_alias(CHAMPION, version.version)
        assert registry.version_for_alias(CHAMPION).approved_by == "alice"
        assert not (tmp_path / "data" / "registry").exists()  # nothing written beside the data root
        stored = list((store / "artifacts").rglob("model.safetensors"))
        assert len(stored) == 1 and stored[0].read_bytes() == b"run-1" * 16
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_the_tracking_uri_must_be_an_http_server() -> None:
    with pytest.raises(ConfigError, match="REVIEWFLOW_MLFLOW_TRACKING_URI must be an http"):
        load_settings({"REVIEWFLOW_MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"})
