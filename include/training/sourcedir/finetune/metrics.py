"""Scoring a model on a split: logits, accuracy, macro-F1, per-class figures and the confusion matrix.

Labels with no training row (``ClassifierSpec.absent_labels``) are never predicted; the figures cover
only the labels that exist (trained on, or present in the split).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from .data import Split, collate

if TYPE_CHECKING:
    from .model import SentimentClassifier


@torch.no_grad()
def predict(model: Any, split: Split, batch_size: int, pad_id: int) -> torch.Tensor:
    """Logits for every row of ``split`` (rows sorted by length for speed, returned in input order)."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(split)), key=lambda i: len(split.input_ids[i]))
    logits = torch.empty((len(split), model.num_labels))
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        input_ids, attention_mask = collate([split.input_ids[i] for i in index], None, pad_id)
        logits[index] = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).float().cpu()
    return logits


def classification_metrics(
    labels: Sequence[int], predictions: Sequence[int], label_names: Sequence[str], present: Sequence[int] | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows: true).

    ``present`` (default: every label) names the label ids that exist in the data: per-class figures,
    the macro average and the matrix (``matrix_labels``) cover only those.
    """
    present = list(range(len(label_names))) if present is None else sorted(present)
    matrix = [[0] * len(label_names) for _ in label_names]
    for truth, guess in zip(labels, predictions, strict=True):
        matrix[truth][guess] += 1
    per_class: dict[str, dict[str, float]] = {}
    for c in present:
        tp = matrix[c][c]
        predicted = sum(row[c] for row in matrix)
        support = sum(matrix[c])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label_names[c]] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    total = len(labels)
    return {
        "accuracy": sum(matrix[c][c] for c in range(len(label_names))) / total if total else 0.0,
        "macro_f1": sum(m["f1"] for m in per_class.values()) / len(per_class) if per_class else 0.0,
        "per_class": per_class,
        "confusion_matrix": [[matrix[r][c] for c in present] for r in present],
        "matrix_labels": [label_names[c] for c in present],
        "rows": total,
    }


def present_labels(model: SentimentClassifier, split: Split) -> list[int]:
    """Label ids the model was trained on, plus any that occur in ``split``."""
    names = model.spec.label_names
    return sorted({names.index(name) for name in model.spec.present_labels} | set(split.labels))


def evaluate(model: Any, split: Split, batch_size: int, pad_id: int, label_names: Sequence[str]) -> dict[str, Any]:
    """:func:`classification_metrics` over the present labels plus the mean unweighted cross-entropy loss."""
    logits = predict(model, split, batch_size, pad_id)
    labels = torch.tensor(split.labels)
    metrics = classification_metrics(split.labels, logits.argmax(-1).tolist(), label_names, present_labels(model, split))
    metrics["loss"] = float(torch.nn.functional.cross_entropy(logits, labels))
    return metrics
