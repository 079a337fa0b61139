"""What a job leaves besides the model folder: ``metrics.json``, ``history.json`` and the plots.

``SM_MODEL_DIR`` also gets ``metrics.json`` (so the model's figures travel with it);
``SM_OUTPUT_DATA_DIR`` gets ``metrics.json``, ``history.json`` (the logged training losses and the
evaluations) and ``plots/{loss_curves,confusion_matrix}.png``.  JSON files are written atomically.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checkpoints import TrainerState
    from .config import Paths

LOG = logging.getLogger("reviewflow.train")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """``payload`` as indented JSON with sorted keys, written to a temporary name and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)


def write_outputs(paths: Paths, metrics: dict[str, Any], state: TrainerState) -> None:
    """``metrics.json`` into the model and output folders, ``history.json`` and the plots into the output folder."""
    write_json(paths.model_dir / "metrics.json", metrics)
    write_json(paths.output_dir / "metrics.json", metrics)
    write_json(paths.output_dir / "history.json", {"train": state.train_log, "eval": state.eval_log})
    plot_outputs(state, metrics.get("test") or metrics.get("validation"), paths.output_dir / "plots")
    LOG.info("wrote the model to %s and metrics/plots to %s", paths.model_dir, paths.output_dir)


def plot_outputs(state: TrainerState, final: dict[str, Any] | None, directory: Path) -> list[Path]:
    """Write the loss-curve PNG and, given the final metrics, the confusion-matrix PNG into ``directory``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([e["step"] for e in state.train_log], [e["loss"] for e in state.train_log], label="train loss")
    if state.eval_log:
        ax.plot([e["step"] for e in state.eval_log], [e["loss"] for e in state.eval_log], "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.set_title("Loss curves")
    ax.legend()
    fig.tight_layout()
    fig.savefig(directory / "loss_curves.png", dpi=100)
    plt.close(fig)
    written.append(directory / "loss_curves.png")
    if final is not None:
        written.append(plot_confusion(final["confusion_matrix"], final["matrix_labels"], directory / "confusion_matrix.png"))
    return written


def plot_confusion(confusion: list[list[int]], label_names: Sequence[str], target: Path) -> Path:
    """The confusion matrix (rows: true labels) as a PNG with the counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(label_names)), label_names)
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max(map(max, confusion)) or 1
    for r, row in enumerate(confusion):
        for c, value in enumerate(row):
            ax.text(c, r, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    ax.set_title("Confusion matrix")
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target
