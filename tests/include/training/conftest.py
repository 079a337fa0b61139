"""A small features-stage dataset (≈300 generated reviews, bundled tokenizer) and a tiny BERT."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def features_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from include.training.sample_features import write_sample_features

    return write_sample_features(tmp_path_factory.mktemp("features") / "run-1", rows=300, max_seq_length=64)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from include.training.sample_features import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
