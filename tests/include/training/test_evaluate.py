"""Evaluation: champion lookup, scoring saved models, challenger-vs-champion comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.training import evaluate as E
from include.training import train as T


@pytest.fixture(scope="module")
def trained(features_dir: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny models trained for a few steps with different seeds."""
    out = {}
    for name, seed in (("a", 1), ("b", 2)):
        work = tmp_path_factory.mktemp(f"model-{name}")
        config, paths = T.parse_args(
            ["--model_name_or_path", str(tiny_model_dir), "--max_steps", "6", "--seed", str(seed), "--num_threads", "1",
             "--max_seq_length", "64", "--checkpoint_steps", "100", "--train_batch_size", "16"],
            {"SM_MODEL_DIR": str(work / "model"), "SM_OUTPUT_DATA_DIR": str(work / "out"),
             "SM_CHECKPOINT_DIR": str(work / "ckpt"), "SM_CHANNEL_TRAIN": str(features_dir / "train"),
             "SM_CHANNEL_TEST": str(features_dir / "test")},
        )
        T.train(config, paths)
        out[name] = work
    return out


def test_score_model_reproduces_the_training_test_metrics(trained: dict[str, Path], features_dir: Path) -> None:
    scored = E.score_model(trained["a"] / "model", features_dir / "test")
    written = json.loads((trained["a"] / "out/metrics.json").read_text())["test"]
    assert scored["confusion_matrix"] == written["confusion_matrix"]
    assert scored["macro_f1"] == pytest.approx(written["macro_f1"])


def test_evaluate_models_compares_on_the_same_rows(trained: dict[str, Path], features_dir: Path) -> None:
    result = E.evaluate_models(trained["a"] / "model", features_dir / "test", trained["b"] / "model")
    a, b = result["challenger"], result["champion"]
    assert a["rows"] == b["rows"] > 0
    assert result["deltas"]["macro_f1"] == pytest.approx(a["macro_f1"] - b["macro_f1"])
    assert result["deltas"]["per_class_f1"]["neutral"] == pytest.approx(
        a["per_class"]["neutral"]["f1"] - b["per_class"]["neutral"]["f1"]
    )
    assert result["challenger_wins"] == (a["macro_f1"] > b["macro_f1"])
    alone = E.evaluate_models(trained["a"] / "model", features_dir / "test", None)
    assert alone["champion"] is None and alone["deltas"] is None and alone["challenger_wins"] is True


def test_compare_rejects_different_test_sets() -> None:
    metrics = {"rows": 3, "accuracy": 1.0, "macro_f1": 1.0, "per_class": {}}
    with pytest.raises(ValueError, match="different rows"):
        E.compare(metrics, {**metrics, "rows": 4})
