"""Score the challenger and the current champion on the same test split and compare them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COMPARED = ("accuracy", "macro_f1")


def score_model(model_dir: Path, test_dir: Path, batch_size: int = 128) -> dict[str, Any]:
    """Metrics of the saved model in ``model_dir`` on the Parquet test split in ``test_dir``."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from include.training.train import evaluate, read_split

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), local_files_only=True)
    label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    split = read_split(test_dir, len(label_names))
    return evaluate(model, split, batch_size, model.config.pad_token_id or 0, label_names)


def compare(challenger: dict[str, Any], champion: dict[str, Any] | None) -> dict[str, Any]:
    """Side-by-side metrics and challenger-minus-champion deltas (overall and per-class F1)."""
    result: dict[str, Any] = {"challenger": challenger, "champion": champion, "deltas": None, "challenger_wins": True}
    if champion is None:
        return result
    if challenger["rows"] != champion["rows"]:
        raise ValueError(f"scored on different rows: challenger {challenger['rows']}, champion {champion['rows']}")
    deltas = {name: challenger[name] - champion[name] for name in COMPARED}
    deltas["per_class_f1"] = {
        label: challenger["per_class"][label]["f1"] - champion["per_class"][label]["f1"] for label in challenger["per_class"]
    }
    result["deltas"] = deltas
    result["challenger_wins"] = deltas["macro_f1"] > 0
    return result


def evaluate_models(
    challenger_dir: Path, test_dir: Path, champion_dir: Path | None, batch_size: int = 128
) -> dict[str, Any]:
    """Score both models on ``test_dir`` and return :func:`compare` of their metrics."""
    challenger = score_model(challenger_dir, test_dir, batch_size)
    champion = score_model(champion_dir, test_dir, batch_size) if champion_dir else None
    return compare(challenger, champion)
