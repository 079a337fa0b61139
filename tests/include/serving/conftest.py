"""Tiny served models, one MLflow registry per session holding them, and local endpoints that tests stop."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from include.registry.base import CHAMPION, DEFAULT_MODEL_NAME
from include.serving.control import EndpointClient, deploy, stop_server
from include.serving.state import EndpointPaths, admin_token
from include.serving.variants import VariantSpec

MODEL = DEFAULT_MODEL_NAME
SEEDS = {"1": 1, "2": 2}  # registry version → seed of its tiny model
MAX_SEQ_LENGTH = 16  # short, so the tests also exercise truncation


@pytest.fixture(scope="session")
def served_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose MLflow registry has versions 1 and 2 (tiny random classifiers); 1 is champion."""
    from include.registry.mlflow_registry import MlflowModelRegistry
    from include.training.sample_features import write_tiny_classifier

    root = tmp_path_factory.mktemp("served-registry")
    registry = MlflowModelRegistry.for_data_root(root, MODEL)
    for version, seed in SEEDS.items():
        folder = write_tiny_classifier(root / "models" / f"run-{version}" / "model", seed, MAX_SEQ_LENGTH)
        assert registry.register_version(f"run-{version}", str(folder), {"test_macro_f1": 0.5}, {}).version == version
    registry.set_alias(CHAMPION, "1")
    return root


def data_root_with_registry(served_registry: Path, target: Path) -> Path:
    """A fresh data root holding a copy of the session's registry (its artefacts stay where they are)."""
    shutil.copytree(served_registry / "registry", target / "registry")
    return target


@dataclass
class LocalEndpoint:
    paths: EndpointPaths
    token: str
    url: str

    def client(self, token: str | None = None) -> EndpointClient:
        return EndpointClient(self.url, token or self.token)


def start_endpoint(
    data_root: Path, specs: Sequence[VariantSpec], server_args: Sequence[str] = (), name: str = "test"
) -> LocalEndpoint:
    """Deploy ``specs`` on a new local endpoint on a free port (the caller stops it)."""
    paths = EndpointPaths.for_endpoint(data_root, name)
    token = admin_token(paths, None)
    description = deploy(paths, specs, token, MODEL, port=0, server_args=server_args)
    return LocalEndpoint(paths, token, description.address)


@pytest.fixture(scope="module")
def endpoint(served_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoint]:
    """One server per test module: v1 at 0.8, v2 at 0.2, at most 8 reviews and 20 kB per request."""
    data_root = data_root_with_registry(served_registry, tmp_path_factory.mktemp("endpoint"))
    started = start_endpoint(
        data_root, [VariantSpec("1", 0.8), VariantSpec("2", 0.2)],
        ["--max-request-items", "8", "--max-body-bytes", "20000", "--threads", "1"],
    )
    yield started
    stop_server(started.paths)
