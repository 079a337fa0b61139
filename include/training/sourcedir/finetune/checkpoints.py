"""Checkpoints a job resumes from exactly: weights, optimizer, scheduler, RNG and :class:`TrainerState`.

``<checkpoint_dir>/checkpoint-<step>/`` holds ``model.safetensors``, ``training_state.pt`` (optimizer,
scheduler and RNG state; loaded with ``weights_only=True``) and ``trainer_state.json``, written last:
a folder without it is incomplete and ignored.  Each folder is written beside its place and renamed
into it, so a kill never leaves half a checkpoint behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "trainer_state.json"


@dataclass
class TrainerState:
    """Everything needed to resume exactly; saved as JSON in every checkpoint."""

    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    train_samples: int = 0
    train_seconds: float = 0.0
    best_metric: float = -1.0
    best_loss: float = float("inf")
    best_step: int = 0
    evals_without_improvement: int = 0
    stopped_early: bool = False
    train_log: list[dict[str, float]] = field(default_factory=list)
    eval_log: list[dict[str, float]] = field(default_factory=list)


def _atomic_dir(target: Path) -> Path:
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _commit_dir(tmp: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def save_weights(model: Any, target: Path) -> None:
    """The model's weights as one safetensors file, written atomically."""
    from safetensors.torch import save_model

    tmp = target.with_name(f".{target.name}.tmp")
    save_model(model, str(tmp))
    os.replace(tmp, target)


def save_checkpoint(directory: Path, model: Any, optimizer: Any, scheduler: Any, state: TrainerState, keep: int) -> Path:
    """Write ``checkpoint-<step>/`` atomically and delete all but the newest ``keep``."""
    target = directory / f"checkpoint-{state.global_step:08d}"
    tmp = _atomic_dir(target)
    save_weights(model, tmp / "model.safetensors")
    rng = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda_rng"] = torch.cuda.get_rng_state_all()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), **rng}, tmp / "training_state.pt")
    (tmp / STATE_FILE).write_text(json.dumps(dataclasses.asdict(state)))
    _commit_dir(tmp, target)
    for old in sorted(directory.glob("checkpoint-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete ``checkpoint-*`` folder (one with its state file), if any."""
    complete = [path for path in sorted(directory.glob("checkpoint-*")) if (path / STATE_FILE).is_file()]
    return complete[-1] if complete else None


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> TrainerState:
    """Restore model, optimizer, scheduler and RNG from ``path``; return the trainer state."""
    from safetensors.torch import load_model

    load_model(model, str(path / "model.safetensors"), device=str(next(model.parameters()).device))
    # weights_only=True: tensors and plain containers only, never arbitrary pickled objects.
    saved = torch.load(path / "training_state.pt", weights_only=True, map_location="cpu")
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    if "cuda_rng" in saved and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    return TrainerState(**json.loads((path / STATE_FILE).read_text()))
