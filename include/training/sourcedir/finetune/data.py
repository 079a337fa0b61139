"""The input channels and the batches: read a channel's Parquet files, sample rows, order and pad batches.

A channel folder holds the features stage's Parquet files: ``review_id``, ``label`` (0..labels-1)
and ``input_ids`` (unpadded token ids).  Batches are pure functions of the seed and the epoch, so a
resumed job sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

NEEDED_COLUMNS = ("review_id", "label", "input_ids")


@dataclass
class Split:
    """One split in memory: unpadded token ids, labels and review ids."""

    input_ids: list[list[int]]
    labels: list[int]
    review_ids: list[str]

    def __len__(self) -> int:
        return len(self.labels)


class InputError(ValueError):
    """A channel's Parquet files are missing or malformed (the message names file, row and field)."""


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


def check_token_ids(split: Split, where: Path, max_seq_length: int, vocab_size: int, model_name: str) -> None:
    """:raises InputError: if a row of ``split`` (read from ``where``) is longer than ``max_seq_length`` or holds
    an id outside the model's vocabulary (the features were tokenized for another model)."""
    longest = max(max(len(row) for row in split.input_ids), 1)
    if longest > max_seq_length:
        raise InputError(f"{where}: a row has {longest} tokens, more than --max_seq_length {max_seq_length}")
    top_id = max(max(row) for row in split.input_ids)
    if top_id >= vocab_size:
        raise InputError(
            f"{where}: token id {top_id} is outside the vocabulary of {model_name} "
            f"({vocab_size} ids): the features were tokenized with another vocabulary"
        )


def sample_rows(split: Split, max_rows: int, seed: int) -> Split:
    """A seeded random ``max_rows`` of ``split`` in their original order (all rows when 0 or more)."""
    if not max_rows or max_rows >= len(split):
        return split
    keep = sorted(random.Random(seed).sample(range(len(split)), max_rows))
    return Split([split.input_ids[i] for i in keep], [split.labels[i] for i in keep], [split.review_ids[i] for i in keep])


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
