"""One MLflow registry database per test session (its first initialisation takes seconds) and tiny model folders."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

_names = itertools.count()


@pytest.fixture(scope="session")
def registry_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from include.registry.mlflow_registry import MlflowModelRegistry

    root = tmp_path_factory.mktemp("data-root")
    MlflowModelRegistry.for_data_root(root).list_versions()
    MlflowModelRegistry.for_data_root(root).client.search_experiments()  # creates and migrates mlflow.db once
    return root


@pytest.fixture
def model_name() -> str:
    """A fresh registered-model name, so tests sharing the database do not see each other's versions."""
    return f"test-model-{next(_names)}"


@pytest.fixture
def make_model(tmp_path: Path) -> Callable[[str], Path]:
    """A model folder as train.py writes it (config, safetensors, tokenizer, label map), with distinct bytes per name."""

    def make(name: str) -> Path:
        folder = tmp_path / name / "model"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"model_type": "bert", "name": name}))
        (folder / "model.safetensors").write_bytes(name.encode() * 16)
        (folder / "tokenizer.json").write_text("{}")
        (folder / "label_map.json").write_text(json.dumps({"0": "negative", "1": "neutral", "2": "positive"}))
        return folder

    return make
