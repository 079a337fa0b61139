"""Score the challenger and the current champion on the same test split and compare them.

The comparison is paired: both models predict the same test rows, and a bootstrap over those rows
gives a 95 % interval of the macro-F1 difference (:func:`paired_bootstrap`), which the approval gate
weighs. The challenger's report also holds per-category F1, the confusion matrix and its most
confident mistakes, so a reviewer can judge the model before approving it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMPARED = ("accuracy", "macro_f1")
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20260101
MISTAKES_SHOWN = 10
EXCERPT_CHARS = 300


@dataclass(frozen=True)
class Scored:
    """One model's predictions on a test split: the metrics and what the bootstrap and report need."""

    metrics: dict[str, Any]
    labels: list[int]
    predictions: list[int]
    present: list[int]


def paired_bootstrap(
    labels: Sequence[int], first: Sequence[int], second: Sequence[int], present: Sequence[int],
    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
) -> dict[str, float]:
    """95 % percentile interval of macro-F1(first) − macro-F1(second) over rows resampled with replacement.

    Both prediction lists are for the same rows; every resample draws the same rows for both, so the
    interval reflects the models' difference rather than the luck of the test set. Macro-F1 covers the
    ``present`` label ids. Returns ``{"diff", "ci95_low", "ci95_high", "resamples"}``.
    """
    import numpy as np

    truth, a, b = (np.asarray(x) for x in (labels, first, second))
    rows = np.random.default_rng(seed).integers(0, len(truth), size=(resamples, len(truth)))

    def macro_f1(predicted: Any, index: Any) -> Any:
        scores = []
        for c in present:
            is_true, is_pred = truth[index] == c, predicted[index] == c
            tp = (is_true & is_pred).sum(-1)
            denominator = is_true.sum(-1) + is_pred.sum(-1)
            scores.append(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0))
        return np.mean(scores, axis=0)

    whole = np.arange(len(truth))
    diffs = macro_f1(a, rows) - macro_f1(b, rows)
    return {
        "diff": float(macro_f1(a, whole) - macro_f1(b, whole)),
        "ci95_low": float(np.percentile(diffs, 2.5)),
        "ci95_high": float(np.percentile(diffs, 97.5)),
        "resamples": resamples,
    }


def score_model(model_dir: Path, test_dir: Path, batch_size: int = 128, report_dir: Path | None = None) -> Scored:
    """Score the saved model in ``model_dir`` on the Parquet test split in ``test_dir``.

    With ``report_dir`` the metrics also get ``per_category`` F1 and ``confident_mistakes``, and the
    confusion matrix is drawn to ``report_dir/confusion_matrix.png``.
    """
    import torch

    from include.training.sourcedir.finetune.data import read_split
    from include.training.sourcedir.finetune.metrics import classification_metrics, predict, present_labels
    from include.training.sourcedir.finetune.model import load_classifier
    from include.training.sourcedir.finetune.outputs import plot_confusion

    model = load_classifier(model_dir)
    names = list(model.spec.label_names)
    split = read_split(test_dir, len(names))
    logits = predict(model, split, batch_size, model.encoder.config.pad_token_id or 0)
    predictions = logits.argmax(-1).tolist()
    present = present_labels(model, split)
    metrics = classification_metrics(split.labels, predictions, names, present)
    metrics["loss"] = float(torch.nn.functional.cross_entropy(logits, torch.tensor(split.labels)))
    if report_dir is not None:
        confidence = logits.softmax(-1).max(-1).values.tolist()
        metrics.update(_report(test_dir, split.review_ids, split.labels, predictions, confidence, names, present))
        metrics["confusion_matrix_png"] = str(plot_confusion(metrics["confusion_matrix"], metrics["matrix_labels"], report_dir / "confusion_matrix.png"))
    return Scored(metrics, split.labels, predictions, present)


def _report(
    test_dir: Path, review_ids: list[str], labels: list[int], predictions: list[int], confidence: list[float],
    names: list[str], present: list[int],
) -> dict[str, Any]:
    """Per-category macro-F1 and the most confident wrong predictions (with a text excerpt)."""
    import pyarrow.parquet as pq

    from include.training.sourcedir.finetune.metrics import classification_metrics

    table = pq.read_table(test_dir, columns=["review_id", "product_category", "text"]).to_pydict()
    by_id = {rid: (category, text) for rid, category, text in zip(table["review_id"], table["product_category"], table["text"], strict=True)}
    per_category: dict[str, dict[str, Any]] = {}
    for category in sorted({by_id[rid][0] for rid in review_ids}):
        rows = [i for i, rid in enumerate(review_ids) if by_id[rid][0] == category]
        scored = classification_metrics([labels[i] for i in rows], [predictions[i] for i in rows], names, present)
        per_category[category] = {
            "rows": len(rows),
            "macro_f1": scored["macro_f1"],
            "accuracy": scored["accuracy"],
            "f1": {label: figures["f1"] for label, figures in scored["per_class"].items()},
        }
    wrong = sorted((i for i, (t, p) in enumerate(zip(labels, predictions, strict=True)) if t != p), key=lambda i: -confidence[i])
    mistakes = [
        {
            "review_id": review_ids[i],
            "product_category": by_id[review_ids[i]][0],
            "true": names[labels[i]],
            "predicted": names[predictions[i]],
            "confidence": round(confidence[i], 4),
            "text": by_id[review_ids[i]][1][:EXCERPT_CHARS],
        }
        for i in wrong[:MISTAKES_SHOWN]
    ]
    return {"per_category": per_category, "confident_mistakes": mistakes}


def compare(challenger: Scored, champion: Scored | None) -> dict[str, Any]:
    """Side-by-side metrics, challenger-minus-champion deltas and the paired bootstrap interval of the macro-F1 delta.

    ``challenger_wins`` when there is no champion, or when the interval lies above 0.
    :raises ValueError: if the two were scored on different rows.
    """
    result: dict[str, Any] = {
        "challenger": challenger.metrics,
        "champion": champion.metrics if champion else None,
        "deltas": None,
        "challenger_wins": True,
        "test_rows": len(challenger.labels),
    }
    if champion is None:
        return result
    if challenger.labels != champion.labels:
        raise ValueError(f"scored on different rows: challenger {len(challenger.labels)}, champion {len(champion.labels)}")
    deltas: dict[str, Any] = {name: challenger.metrics[name] - champion.metrics[name] for name in COMPARED}
    deltas["per_class_f1"] = {
        label: challenger.metrics["per_class"][label]["f1"] - champion.metrics["per_class"][label]["f1"]
        for label in challenger.metrics["per_class"]
        if label in champion.metrics["per_class"]
    }
    present = sorted(set(challenger.present) | set(champion.present))
    interval = paired_bootstrap(challenger.labels, challenger.predictions, champion.predictions, present)
    deltas["macro_f1_ci95"] = [interval["ci95_low"], interval["ci95_high"]]
    result["deltas"] = deltas
    result["bootstrap"] = interval
    result["challenger_wins"] = interval["ci95_low"] > 0
    return result


def evaluate_models(
    challenger_dir: Path, test_dir: Path, champion_dir: Path | None, batch_size: int = 128, report_dir: Path | None = None
) -> dict[str, Any]:
    """Score both models on ``test_dir`` (the challenger with its report) and return :func:`compare` of them."""
    challenger = score_model(challenger_dir, test_dir, batch_size, report_dir)
    champion = score_model(champion_dir, test_dir, batch_size) if champion_dir else None
    return compare(challenger, champion)
