"""Evaluation: champion lookup, scoring saved models, challenger-vs-champion comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.training import evaluate as E
from include.training.sourcedir.finetune.config import parse_args
from include.training.sourcedir.finetune.loop import train


@pytest.fixture(scope="module")
def trained(features_dir: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny models trained for a few steps with different seeds."""
    out = {}
    for name, seed in (("a", 1), ("b", 2)):
        work = tmp_path_factory.mktemp(f"model-{name}")
        config, paths = parse_args(
            ["--model_name_or_path", str(tiny_model_dir), "--max_steps", "6", "--seed", str(seed), "--num_threads", "1",
             "--max_seq_length", "64", "--checkpoint_steps", "100", "--train_batch_size", "16"],
            {"SM_MODEL_DIR": str(work / "model"), "SM_OUTPUT_DATA_DIR": str(work / "out"),
             "SM_CHECKPOINT_DIR": str(work / "ckpt"), "SM_CHANNEL_TRAIN": str(features_dir / "train"),
             "SM_CHANNEL_TEST": str(features_dir / "test")},
        )
        train(config, paths)
        out[name] = work
    return out


def test_score_model_reproduces_the_training_test_metrics(trained: dict[str, Path], features_dir: Path, tmp_path: Path) -> None:
    scored = E.score_model(trained["a"] / "model", features_dir / "test", report_dir=tmp_path)
    written = json.loads((trained["a"] / "out/metrics.json").read_text())["test"]
    assert scored.metrics["confusion_matrix"] == written["confusion_matrix"]
    assert scored.metrics["macro_f1"] == pytest.approx(written["macro_f1"])
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = sum(c["rows"] for c in scored.metrics["per_category"].values())
    assert rows == written["rows"] and len(scored.metrics["per_category"]) > 1
    mistakes = scored.metrics["confident_mistakes"]
    assert mistakes and all(m["true"] != m["predicted"] and m["text"] for m in mistakes)
    assert [m["confidence"] for m in mistakes] == sorted((m["confidence"] for m in mistakes), reverse=True)


def test_evaluate_models_compares_on_the_same_rows(trained: dict[str, Path], features_dir: Path) -> None:
    result = E.evaluate_models(trained["a"] / "model", features_dir / "test", trained["b"] / "model")
    a, b = result["challenger"], result["champion"]
    assert a["rows"] == b["rows"] == result["test_rows"] > 0
    assert result["deltas"]["macro_f1"] == pytest.approx(a["macro_f1"] - b["macro_f1"])
    assert result["deltas"]["per_class_f1"]["neutral"] == pytest.approx(
        a["per_class"]["neutral"]["f1"] - b["per_class"]["neutral"]["f1"]
    )
    low, high = result["deltas"]["macro_f1_ci95"]
    assert low <= result["deltas"]["macro_f1"] <= high
    assert result["challenger_wins"] == (low > 0)
    alone = E.evaluate_models(trained["a"] / "model", features_dir / "test", None)
    assert alone["champion"] is None and alone["deltas"] is None and alone["challenger_wins"] is True


def test_paired_bootstrap_matches_scikit_learn_and_narrows_with_rows() -> None:
    import random

    from sklearn.metrics import f1_score

    rng = random.Random(0)
    truth = [rng.randrange(3) for _ in range(400)]
    better = [t if rng.random() < 0.8 else rng.randrange(3) for t in truth]
    worse = [t if rng.random() < 0.6 else rng.randrange(3) for t in truth]
    interval = E.paired_bootstrap(truth, better, worse, [0, 1, 2], resamples=500)
    assert interval["diff"] == pytest.approx(f1_score(truth, better, average="macro") - f1_score(truth, worse, average="macro"))
    assert 0 < interval["ci95_low"] < interval["diff"] < interval["ci95_high"]
    few = E.paired_bootstrap(truth[:40], better[:40], worse[:40], [0, 1, 2], resamples=500)
    assert few["ci95_high"] - few["ci95_low"] > interval["ci95_high"] - interval["ci95_low"]


def test_compare_rejects_different_test_sets() -> None:
    scored = E.Scored({"rows": 3, "accuracy": 1.0, "macro_f1": 1.0, "per_class": {}}, [0, 1, 2], [0, 1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match="different rows"):
        E.compare(scored, E.Scored(scored.metrics, [0, 1], [0, 1], [0, 1]))
