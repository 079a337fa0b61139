"""A features-stage-shaped dataset built without Spark from generated or given reviews (tests, benchmarks).

Uses the features stage's own label, text, split and tokenizer functions, so the rows match what
``include.features`` writes; it skips only the class balancing and runs in-process in a second.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from include.features.splits import SPLITS, SplitPlan, bucket_of, split_of
from include.features.text import LABEL_NAMES, review_text, star_to_label
from include.features.tokenizer import Truncation, tokenize_batch
from include.sample_data import COLUMNS, SampleSpec, generate_rows


def _scaled(values: list[int]) -> list[float]:
    low, high = min(values), max(values)
    return [(v - low) / (high - low) if high > low else 0.0 for v in values]


def _balanced(index: list[int], labels: list[int], ids: list[str]) -> list[int]:
    """Keep, per class, the rows of lowest hash bucket up to the smallest class's count (in input order)."""
    by_class: dict[int, list[int]] = {}
    for i in index:
        by_class.setdefault(labels[i], []).append(i)
    smallest = min(len(rows) for rows in by_class.values())
    kept = {i for rows in by_class.values() for i in sorted(rows, key=lambda i: bucket_of(ids[i]))[:smallest]}
    return [i for i in index if i in kept]


def write_sample_features(
    root: Path,
    rows: int,
    seed: int = 42,
    max_seq_length: int = 64,
    plan: SplitPlan = SplitPlan(0.05, 0.7, 0.15),
    balance: bool = False,
    truncation: Truncation = "head",
) -> Path:
    """Generated reviews as features: see :func:`write_features`; splits by a hash of the review id.

    :param rows: generated reviews (split by a hash of the review id, so sizes vary slightly).
    :param balance: downsample every class of the train split to its smallest, as the features
        stage does by default.
    """
    records = list(generate_rows(SampleSpec(rows, seed)))
    splits = [split_of(r[COLUMNS.index("review_id")], plan) for r in records]
    return write_features(root, records, splits, max_seq_length, balance, truncation)


def write_features(
    root: Path,
    records: Sequence[Sequence[str]],
    splits: Sequence[str],
    max_seq_length: int = 64,
    balance: bool = False,
    truncation: Truncation = "head",
) -> Path:
    """Write ``root/{train,validation,test,replay}/part-00000.parquet`` and ``root/manifest.json``.

    :param records: source rows in ``REVIEW_COLUMNS`` order (strings, as in the TSV).
    :param splits: the split of each record (``train``, ``validation``, ``test`` or ``replay``).
    :param balance: downsample every class of the train split to its smallest.
    :return: ``root``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    col = {name: i for i, name in enumerate(COLUMNS)}
    texts = [review_text(r[col["review_headline"]], r[col["review_body"]]) for r in records]
    tokens = tokenize_batch(texts, max_seq_length, truncation)
    helpful = _scaled([int(r[col["helpful_votes"]]) for r in records])
    total = _scaled([int(r[col["total_votes"]]) for r in records])
    length = _scaled([len(text) for text in texts])
    labels = [star_to_label(int(r[col["star_rating"]])) for r in records]
    ids = [r[col["review_id"]] for r in records]
    schema = pa.schema(
        [
            ("review_id", pa.string()),
            ("product_category", pa.string()),
            ("label", pa.int32()),
            ("text", pa.string()),
            ("input_ids", pa.list_(pa.int32())),
            ("attention_mask", pa.list_(pa.int8())),
            ("token_count", pa.int32()),
            ("helpful_votes_scaled", pa.float64()),
            ("total_votes_scaled", pa.float64()),
            ("review_length_scaled", pa.float64()),
        ]
    )
    train_counts: Counter[int] = Counter()
    for split in SPLITS:
        index = [i for i, name in enumerate(splits) if name == split]
        if balance and split == "train":
            index = _balanced(index, labels, ids)
        if split == "train":
            train_counts = Counter(labels[i] for i in index)
        table = pa.table(
            {
                "review_id": [records[i][col["review_id"]] for i in index],
                "product_category": [records[i][col["product_category"]] for i in index],
                "label": [labels[i] for i in index],
                "text": [texts[i] for i in index],
                "input_ids": [tokens.input_ids[i] for i in index],
                "attention_mask": [[1] * len(tokens.input_ids[i]) for i in index],
                "token_count": [tokens.token_counts[i] for i in index],
                "helpful_votes_scaled": [helpful[i] for i in index],
                "total_votes_scaled": [total[i] for i in index],
                "review_length_scaled": [length[i] for i in index],
            },
            schema=schema,
        )
        (root / split).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / split / "part-00000.parquet")
    n_train = sum(train_counts.values())
    present = sum(1 for k in range(len(LABEL_NAMES)) if train_counts[k])
    weights = {str(k): n_train / (present * train_counts[k]) if train_counts[k] else 0.0 for k in range(len(LABEL_NAMES))}
    manifest = {
        "class_weights": weights,
        "max_seq_length": max_seq_length,
        "truncation": truncation,
        "label_names": list(LABEL_NAMES),
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def _tiny_config(**extra: object) -> object:
    from transformers import BertConfig

    return BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, **extra)


def _copy_bundled_tokenizer(target: Path) -> None:
    import shutil

    from include.features.tokenizer import bundled_model_dir

    for name in TOKENIZER_FILES:
        shutil.copy(bundled_model_dir() / name, target / name)


def write_tiny_bert(target: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer, 64-wide BERT with the bundled vocabulary and tokenizer.

    Fast enough to exercise training mechanics (checkpoints, resume, operators) in seconds;
    it learns little, so quality checks use the real bundled model.
    """
    import torch
    from transformers import BertModel

    target.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    BertModel(_tiny_config()).save_pretrained(target)
    _copy_bundled_tokenizer(target)
    return target


def write_tiny_classifier(
    target: Path, seed: int = 0, max_seq_length: int = 64, truncation: Truncation = "head", answers: str | None = None
) -> Path:
    """A model folder as train.py saves it (``save_classifier``), with a random tiny encoder (for serving tests).

    Different seeds give models that answer differently; they learned nothing.

    :param answers: a label the model answers for every review (its head ignores the encoder), so
        tests know how often it is right; ``None``: whatever the random head says.
    """
    import torch
    from transformers import AutoTokenizer, BertModel

    from include.features.tokenizer import bundled_model_dir
    from include.training.sourcedir.finetune.model import ClassifierSpec, SentimentClassifier, save_classifier

    torch.manual_seed(seed)
    spec = ClassifierSpec("mean", truncation, max_seq_length, LABEL_NAMES)
    model = SentimentClassifier(BertModel(_tiny_config(), add_pooling_layer=False), spec)
    if answers is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor([5.0 if name == answers else 0.0 for name in LABEL_NAMES]))
    save_classifier(model, AutoTokenizer.from_pretrained(str(bundled_model_dir()), local_files_only=True), target)
    return target
