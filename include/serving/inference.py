"""Score reviews with a registered model: the same code in the local server and in a SageMaker endpoint.

A model folder is what the training job writes (``save_classifier`` in ``include/training/sourcedir/finetune/model.py``):
``model.safetensors`` (never a pickle), the encoder's ``config.json``, the tokenizer files and ``classifier.json``
(pooling, truncation, ``max_seq_length``, labels).  It is loaded with that module's ``load_classifier``, and a review's
text is built and tokenized exactly as the features stage does it (:func:`include.features.text.review_text`,
then :func:`include.features.tokenizer.tokenize_arrays` with the model's ``max_seq_length``, truncation and
``tokenizer.json``), so serving sees what training saw.

Requests are JSON: one review ``{"review_headline": "...", "review_body": "..."}`` or a batch
``{"instances": [review, ...]}``; answers are ``{"predictions": [item, ...]}``, one item per review with
``inference_id``, ``label``, ``probabilities`` (per label name), ``variant`` and ``model_version``.

On SageMaker this file is the inference script (``code/inference.py`` in the model archive, next to the
``include/features`` and ``include/training`` modules it imports); the Hugging Face inference toolkit calls ``model_fn(model_dir)``
once, then ``input_fn(body, content_type)``, ``predict_fn(data, model)`` and ``output_fn(prediction, accept)``
per request.  ``serving.json`` in the model folder names the variant and model version the archive was
built for (see :mod:`include.serving.sagemaker`).
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from include.features.text import clean_text, review_text

JSON = "application/json"
WEIGHTS_FILE = "model.safetensors"
SERVING_FILE = "serving.json"
DEFAULT_MAX_ITEMS = 64
PROBABILITY_DIGITS = 6


class RequestError(ValueError):
    """A request the endpoint refuses; ``field`` names the offending field (or header), ``status`` the HTTP code."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"field": self.field, "message": self.message}}


class ModelFolderError(ValueError):
    """A model folder that cannot be served (the message names the file and what is wrong)."""


class Prediction(NamedTuple):
    label: str
    probabilities: dict[str, float]


# ---------------------------------------------------------------- requests


def _review(value: object, where: str) -> str:
    """The model text of one review object; ``where`` prefixes field names (``instances[3].``)."""
    if not isinstance(value, Mapping):
        raise RequestError(where.rstrip(".") or "body", f"must be a JSON object, got {type(value).__name__}")
    headline, body = value.get("review_headline"), value.get("review_body")
    if headline is not None and not isinstance(headline, str):
        raise RequestError(f"{where}review_headline", f"must be a string, got {type(headline).__name__}")
    if body is None:
        raise RequestError(f"{where}review_body", "is required")
    if not isinstance(body, str):
        raise RequestError(f"{where}review_body", f"must be a string, got {type(body).__name__}")
    check_unicode(f"{where}review_headline", headline or "")
    check_unicode(f"{where}review_body", body)
    if not clean_text(body):
        raise RequestError(f"{where}review_body", "is empty")
    return review_text(headline, body)


def parse_reviews(payload: object, max_items: int = DEFAULT_MAX_ITEMS) -> list[str]:
    """The model texts of a decoded request: one review object, or ``{"instances": [review, ...]}``.

    :raises RequestError: naming the field that is missing, mistyped or empty, or (status 413) a batch of
        more than ``max_items`` reviews.
    """
    if isinstance(payload, Mapping) and "instances" in payload:
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise RequestError("instances", f"must be a list of review objects, got {type(instances).__name__}")
        if not instances:
            raise RequestError("instances", "is empty")
        if len(instances) > max_items:
            raise RequestError("instances", f"has {len(instances)} reviews, at most {max_items} per request", 413)
        return [_review(item, f"instances[{i}].") for i, item in enumerate(instances)]
    return [_review(payload, "")]


def decode_json(body: bytes | str) -> object:
    """The JSON value of a request body. :raises RequestError: when it is not UTF-8 JSON, or nests too deeply."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError("body", f"is not valid JSON ({error})") from None
    except RecursionError:
        raise RequestError("body", "nests arrays or objects too deeply") from None


def check_unicode(field: str, text: str) -> None:
    """:raises RequestError: when ``text`` holds a lone UTF-16 surrogate (a JSON ``\\ud800`` escape), which
    is no character: the tokenizer and the feedback store take UTF-8 text only."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = text[error.start]
        raise RequestError(field, f"holds a lone UTF-16 surrogate (\\u{ord(bad):04x}) at character {error.start}") from None


def check_content_type(content_type: str | None) -> None:
    """:raises RequestError: (415) unless ``content_type`` is JSON (a missing header is taken as JSON)."""
    if content_type and content_type.split(";")[0].strip().lower() != JSON:
        raise RequestError("Content-Type", f"must be {JSON}, got {content_type!r}", 415)


def prediction_items(predictions: Sequence[Prediction], variant: str, model_version: str) -> list[dict[str, Any]]:
    """The answer items for ``predictions``, each with a fresh ``inference_id``."""
    return [
        {
            "inference_id": uuid.uuid4().hex,
            "label": prediction.label,
            "probabilities": prediction.probabilities,
            "variant": variant,
            "model_version": model_version,
        }
        for prediction in predictions
    ]


# ---------------------------------------------------------------- the model


@dataclass
class ReviewClassifier:
    """A loaded sentiment model and how its inputs are built (from its ``classifier.json``).

    :param model: the training package's ``SentimentClassifier`` in eval mode (int8 Linear layers if ``int8``).
    :param model_dir: the folder it was loaded from (holds ``tokenizer.json``).
    :param label_names: class names by output index (labels absent from training get probability 0).
    :param max_seq_length: token ids per review, as in training.
    :param truncation: how long reviews are cut (``head`` or ``head_tail``), as in training.
    :param pad_id: the padding token id.
    :param int8: whether the Linear layers were dynamically quantised to int8.
    """

    model: Any
    model_dir: Path
    label_names: tuple[str, ...]
    max_seq_length: int
    truncation: str
    pad_id: int
    int8: bool = False

    @classmethod
    def load(cls, model_dir: str | Path, int8: bool = False) -> ReviewClassifier:
        """Load a model folder with the training package's ``load_classifier`` (safetensors only); with ``int8`` quantise
        its Linear layers dynamically (int8 weights with one scale per output channel, int8 activations
        quantised per batch).

        :raises ModelFolderError: naming the missing or malformed file.
        """
        import torch

        from include.training.sourcedir.finetune.model import load_classifier

        folder = Path(model_dir)
        if not (folder / WEIGHTS_FILE).is_file():
            raise ModelFolderError(
                f"{folder / WEIGHTS_FILE} is missing: only safetensors weights are served, never pickles"
            )
        if not (folder / "tokenizer.json").is_file():
            raise ModelFolderError(
                f"{folder / 'tokenizer.json'} is missing: the model's tokenizer must be saved with it"
            )
        try:
            model = load_classifier(folder)
        except (OSError, ValueError, TypeError) as error:  # no or a malformed classifier.json / config.json
            raise ModelFolderError(f"{folder}: cannot be loaded: {error}") from None
        spec, pad_id = model.spec, model.encoder.config.pad_token_id or 0
        if int8:
            # Per-output-channel weight scales: per-tensor ones cost this model ~0.04 macro-F1, these ~0.004.
            qconfig = {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
                model = torch.ao.quantization.quantize_dynamic(model, qconfig, dtype=torch.qint8)
        return cls(model, folder, tuple(spec.label_names), spec.max_seq_length, spec.truncation, pad_id, int8)

    def encode(self, texts: Sequence[str]) -> tuple[Any, Any]:
        """``(input_ids, attention_mask)`` tensors: the features stage's tokenization, padded to the longest text."""
        import numpy as np
        import torch

        from include.features.tokenizer import tokenize_arrays

        ids = tokenize_arrays(texts, self.max_seq_length, self.truncation, str(self.model_dir)).input_ids
        offsets = ids.offsets.to_numpy()
        lengths = np.diff(offsets)
        rows = np.repeat(np.arange(len(texts)), lengths)
        columns = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
        input_ids = np.full((len(texts), int(lengths.max())), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros_like(input_ids)
        input_ids[rows, columns] = ids.values.to_numpy()
        attention_mask[rows, columns] = 1
        return torch.from_numpy(input_ids), torch.from_numpy(attention_mask)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Label and class probabilities of each text, in one forward pass."""
        import torch

        if not texts:
            return []
        input_ids, attention_mask = self.encode(texts)
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask)
            probabilities = torch.softmax(logits.float(), -1)
        return [
            Prediction(
                self.label_names[max(range(len(row)), key=row.__getitem__)],
                {name: round(p, PROBABILITY_DIGITS) for name, p in zip(self.label_names, row, strict=True)},
            )
            for row in probabilities.tolist()
        ]


# ---------------------------------------------------------------- the SageMaker inference script


@dataclass
class ServedModel:
    """What ``model_fn`` returns: the classifier and the variant / model version it answers as."""

    classifier: ReviewClassifier
    variant: str
    model_version: str


def model_fn(model_dir: str) -> ServedModel:
    """Load the model folder; ``serving.json`` (written with the archive) says variant, version and int8."""
    serving = Path(model_dir) / SERVING_FILE
    info = json.loads(serving.read_text()) if serving.is_file() else {}
    classifier = ReviewClassifier.load(model_dir, int8=bool(info.get("int8", False)))
    return ServedModel(classifier, str(info.get("variant", "")), str(info.get("model_version", "")))


def input_fn(input_data: str | bytes, content_type: str) -> list[str]:
    """The model texts of a request body. :raises RequestError: (the toolkit answers 400 with its message)."""
    check_content_type(content_type)
    return parse_reviews(decode_json(input_data))


def predict_fn(data: list[str], model: ServedModel) -> list[dict[str, Any]]:
    """One answer item per text."""
    return prediction_items(model.classifier.predict(data), model.variant, model.model_version)


def output_fn(prediction: list[dict[str, Any]], accept: str) -> str:
    """``{"predictions": [...]}`` as JSON. :raises RequestError: for an ``Accept`` other than JSON."""
    if accept and accept.split(";")[0].strip().lower() not in (JSON, "*/*"):
        raise RequestError("Accept", f"must be {JSON}, got {accept!r}", 406)
    return json.dumps({"predictions": prediction})
