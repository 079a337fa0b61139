"""Local endpoints on free ports over a copy of the session's served registry (``served_registry``); tests stop them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from include.registry.base import DEFAULT_MODEL_NAME
from include.serving.control import EndpointClient, deploy, stop_server
from include.serving.state import EndpointPaths, admin_token
from include.serving.variants import VariantSpec

MODEL = DEFAULT_MODEL_NAME


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
