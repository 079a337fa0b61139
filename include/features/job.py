"""The feature job: curated snapshot → labelled, balanced, split, tokenized and scaled Parquet per split.

Runs unchanged on a local SparkSession (:func:`build_features`) and under ``spark-submit``::

    python -m include.features.job --snapshot-uri <root>/curated/reviews/snapshot=<id> \\
        --output-uri <root>/features/<run_key> --feature-store-uri <root>/feature_store/reviews

Output (committed atomically: written to a staging folder, ``manifest.json`` last, then renamed)::

    <output_uri>/{train,validation,test,replay}/part-*.parquet
    <output_uri>/manifest.json   <output_uri>/scaler.json

``replay`` is held out before balancing and keeps the natural class mix of live traffic; only ``train``
is balanced, so ``validation`` and ``test`` keep the data's class mix too. An evaluation floor tops up
``validation`` and ``test`` from ``train`` where a class has too few rows there (see :func:`floor_moves`).
"""

from __future__ import annotations

import argparse
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd  # at module level: Spark resolves the pandas UDF's type hints from this module

from include import hadoop_fs
from include.errors import BadInputError
from include.features.scaling import MinMaxScaler
from include.features.splits import SPLITS, SplitPlan, bucket_column, downsample, split_column
from include.features.text import LABEL_NAMES, review_text
from include.features.tokenizer import TRUNCATIONS, Truncation, tokenize_arrays, tokenizer_info

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

Balance = Literal["downsample", "none"]
SNAPSHOT_COLUMNS: tuple[str, ...] = (
    "review_id",
    "product_category",
    "star_rating",
    "helpful_votes",
    "total_votes",
    "review_headline",
    "review_body",
    "review_date",
)
# The split files' columns and Spark types; the tokenizer step also carries split and review_date.
OUTPUT_SCHEMA: tuple[tuple[str, str], ...] = (
    ("review_id", "string"),
    ("product_category", "string"),
    ("label", "int"),
    ("text", "string"),
    ("input_ids", "array<int>"),
    ("attention_mask", "array<tinyint>"),
    ("token_count", "int"),
    ("helpful_votes_scaled", "double"),
    ("total_votes_scaled", "double"),
    ("review_length_scaled", "double"),
)
OUTPUT_COLUMNS: tuple[str, ...] = tuple(name for name, _ in OUTPUT_SCHEMA)
OUTPUT_DDL = ", ".join(f"{name} {kind}" for name, kind in (*OUTPUT_SCHEMA, ("split", "string"), ("review_date", "date")))
MAX_BERT_LENGTH = 512
EVALUATION_SPLITS = ("test", "validation")
# The floor never takes more than this share of a class's (non-replay) rows into each evaluation split.
EVAL_FLOOR_MAX_SHARE = 0.2


class FeatureError(BadInputError):
    """The snapshot or the parameters cannot produce a usable feature set."""


@dataclass(frozen=True)
class FeatureParams:
    """Parameters of one feature run.

    :param snapshot_uri: curated snapshot folder (``.../snapshot=<id>``, hive-partitioned by product_category).
    :param output_uri: where this run's splits and manifest go (``<data_root>/features/<run_key>``).
    :param run_key: the run's key, recorded in the manifest and the feature table.
    :param categories: product categories to use; ``None`` for all.
    :param balance: ``downsample`` every class of the train split to its smallest, or ``none`` (train
        with class weights); validation and test are never balanced.
    :param max_seq_length: token ids per review after truncation, [CLS] and [SEP] included.
    :param truncation: ``head_tail`` (a quarter of the budget from the review's start, the rest from
        its end) or ``head`` (the start only); see :func:`~include.features.tokenizer.tokenize_arrays`.
    :param eval_floor: minimum rows of every present class in the test and in the validation split,
        taken from train (before balancing) where the hash split left fewer, capped at
        ``EVAL_FLOOR_MAX_SHARE`` of the class; 0 turns the floor off.
    :param seed: picks which rows downsampling keeps (splits never depend on it).
    :param plan: shares of the replay/train/validation/test splits.
    :param feature_store_uri: offline feature table to append to; ``None`` to skip.
    """

    snapshot_uri: str
    output_uri: str
    run_key: str
    categories: tuple[str, ...] | None = None
    balance: Balance = "downsample"
    max_seq_length: int = 64
    truncation: Truncation = "head_tail"
    eval_floor: int = 30
    seed: int = 42
    plan: SplitPlan = field(default_factory=SplitPlan)
    feature_store_uri: str | None = None

    def __post_init__(self) -> None:
        if self.categories is not None and not self.categories:
            raise FeatureError("categories is an empty selection: name at least one product category, or pass None for all")
        if self.balance not in ("downsample", "none"):
            raise FeatureError(f"balance must be 'downsample' or 'none', got {self.balance!r}")
        if not 2 <= self.max_seq_length <= MAX_BERT_LENGTH:
            raise FeatureError(f"max_seq_length must be in 2..{MAX_BERT_LENGTH}, got {self.max_seq_length}")
        if self.truncation not in TRUNCATIONS:
            raise FeatureError(f"truncation must be one of {', '.join(TRUNCATIONS)}, got {self.truncation!r}")
        if self.eval_floor < 0:
            raise FeatureError(f"eval_floor must be >= 0, got {self.eval_floor}")


def read_snapshot(
    spark: SparkSession, snapshot_uri: str, categories: tuple[str, ...] | None
) -> tuple[DataFrame, int]:
    """The snapshot's rows (optionally of ``categories``) with the columns the job needs, and their count.

    :raises FeatureError: if the snapshot has no Parquet files, lacks a column, has no rows, lacks a
        requested category, or holds a row with an empty review_id or a star_rating outside 1..5.
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    try:
        frame = spark.read.parquet(snapshot_uri)
    except AnalysisException as error:
        raise FeatureError(f"snapshot {snapshot_uri}: no readable Parquet files ({str(error).splitlines()[0]})") from error
    missing = [name for name in SNAPSHOT_COLUMNS if name not in frame.columns]
    if missing:
        raise FeatureError(f"snapshot {snapshot_uri}: missing column(s) {', '.join(missing)}")
    frame = frame.select(*SNAPSHOT_COLUMNS).withColumn("product_category", F.col("product_category").cast("string"))

    bad_row = (
        F.col("review_id").isNull()
        | (F.trim("review_id") == "")
        | F.col("star_rating").isNull()
        | ~F.col("star_rating").isin(1, 2, 3, 4, 5)
    )
    per_category = {
        row["product_category"]: (row["rows"], row["bad"])
        for row in frame.groupBy("product_category")
        .agg(F.count(F.lit(1)).alias("rows"), F.sum(bad_row.cast("int")).alias("bad"))
        .collect()
    }
    if not per_category:
        raise FeatureError(f"snapshot {snapshot_uri} has no rows")
    if categories is not None:
        unknown = sorted(set(categories) - set(per_category))
        if unknown:
            raise FeatureError(
                f"snapshot {snapshot_uri} has no rows for categor{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(unknown)}; available: {', '.join(sorted(per_category))}"
            )
        frame = frame.where(F.col("product_category").isin(list(categories)))
    selected = {cat: counts for cat, counts in per_category.items() if categories is None or cat in categories}
    if any(bad for _, bad in selected.values()):
        examples = frame.where(bad_row).select("product_category", "review_id", "star_rating").limit(5).collect()
        listed = "; ".join(
            f"product_category={r['product_category']} review_id={r['review_id']!r} star_rating={r['star_rating']!r}"
            for r in examples
        )
        raise FeatureError(f"snapshot {snapshot_uri}: rows with an empty review_id or a star_rating outside 1..5: {listed}")
    return frame, sum(rows for rows, _ in selected.values())


def label_column(star_rating: str = "star_rating") -> Any:
    """Spark column: 1–2 stars → 0, 3 → 1, 4–5 → 2 (the Spark twin of :func:`~include.features.text.star_to_label`)."""
    from pyspark.sql import functions as F

    stars = F.col(star_rating)
    return F.when(stars <= 2, 0).when(stars == 3, 1).otherwise(2).cast("int")


def floor_moves(counts: dict[tuple[str, int], int], floor: int) -> dict[int, dict[str, int]]:
    """Train rows to move into each evaluation split, per label, so it holds ``floor`` rows of the label.

    ``counts`` are rows per ``(split, label)`` of the non-replay rows. A split is topped up to
    ``min(floor, EVAL_FLOOR_MAX_SHARE * rows of the label)``, never taking more train rows than exist.
    """
    moves: dict[int, dict[str, int]] = {}
    for label in sorted({label for _, label in counts}):
        total = sum(counts.get((split, label), 0) for split in ("train", *EVALUATION_SPLITS))
        target = min(floor, int(EVAL_FLOOR_MAX_SHARE * total))
        available = counts.get(("train", label), 0)
        for split in EVALUATION_SPLITS:
            take = min(max(0, target - counts.get((split, label), 0)), available)
            available -= take
            if take:
                moves.setdefault(label, {})[split] = take
    return moves


def apply_eval_floor(rows: DataFrame, floor: int) -> tuple[DataFrame, dict[str, dict[str, int]]]:
    """Move train rows into test and validation per :func:`floor_moves`; return the rows and what was moved.

    The rows moved are the train rows of lowest hash bucket in their class, so the result depends only
    on the data. Where the hash split already meets the floor nothing changes (and no shuffle runs).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = {
        (row["split"], row["label"]): row["count"]
        for row in rows.where(F.col("split") != "replay").groupBy("split", "label").count().collect()
    }
    moves = floor_moves(counts, floor)
    moved = {split: {LABEL_NAMES[label]: by_split.get(split, 0) for label, by_split in moves.items()} for split in EVALUATION_SPLITS}
    if not moves:
        return rows, moved
    rank = F.row_number().over(Window.partitionBy("label", "split").orderBy(bucket_column(F.col("review_id")), "review_id"))
    ranked = rows.withColumn("_rank", F.when(F.col("split") == "train", rank))
    split = F.col("split")
    for label, by_split in moves.items():
        to_test, to_validation = by_split.get("test", 0), by_split.get("validation", 0)
        is_label = F.col("label") == label
        split = (
            F.when(is_label & (F.col("_rank") <= to_test), F.lit("test"))
            .when(is_label & (F.col("_rank") <= to_test + to_validation), F.lit("validation"))
            .otherwise(split)
        )
    return ranked.withColumn("split", split).drop("_rank"), moved


def prepare_rows(frame: DataFrame, params: FeatureParams) -> tuple[DataFrame, dict[str, dict[str, int]]]:
    """Label, split, apply the evaluation floor, balance and build the text of the snapshot rows.

    Only the train split is balanced: validation and test keep the data's class mix (macro-F1 is
    measured on reviews as users send them) and replay that of live traffic. The floor is applied
    before balancing. Returns the rows and the train rows the floor moved per evaluation split and label.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    rows = frame.select(
        "review_id",
        "product_category",
        label_column().alias("label"),
        split_column(F.col("review_id"), params.plan).alias("split"),
        "review_headline",
        "review_body",
        "helpful_votes",
        "total_votes",
        "review_date",
    )
    moved: dict[str, dict[str, int]] = {split: {} for split in EVALUATION_SPLITS}
    if params.eval_floor:
        rows, moved = apply_eval_floor(rows, params.eval_floor)
    if params.balance == "downsample":
        kept = rows.where(F.col("split") != "train")
        rows = downsample(rows.where(F.col("split") == "train"), "label", "review_id", params.seed).unionByName(kept)
    # The text (a Python UDF) is built after balancing, only for the rows that are kept.
    text = pandas_udf(_review_texts, "string")("review_headline", "review_body")
    return rows.withColumn("text", text).drop("review_headline", "review_body").withColumn("review_length", F.length("text")), moved


def _review_texts(headlines: pd.Series, bodies: pd.Series) -> pd.Series:
    return pd.Series([review_text(h, b) for h, b in zip(headlines, bodies, strict=True)], index=headlines.index)


def tokenize_batches(
    batches: Iterator[pa.RecordBatch], max_seq_length: int, scaler: MinMaxScaler, truncation: Truncation = "head"
) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: tokenize each Arrow batch in one tokenizer call and scale the numeric features.

    Columns stay Arrow arrays end to end (:func:`~include.features.tokenizer.tokenize_arrays`); no pandas objects.
    """
    import pyarrow as pa

    for batch in batches:
        tokens = tokenize_arrays(batch.column("text").to_pylist(), max_seq_length, truncation)
        scaled = {name: pa.array(values, from_pandas=True) for name, values in scaler.transform(batch).items()}
        columns = {
            **{name: batch.column(name) for name in ("review_id", "product_category", "label", "text")},
            "input_ids": tokens.input_ids,
            "attention_mask": tokens.attention_mask,
            "token_count": tokens.token_counts,
            **scaled,
            "split": batch.column("split"),
            "review_date": batch.column("review_date"),
        }
        yield pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))


def class_weights(train_per_class: dict[str, int]) -> dict[str, float]:
    """``n / (present classes * n_c)`` per class of the train split (all 1.0 when balanced; 0.0 for an absent class)."""
    total = sum(train_per_class.values())
    present = sum(1 for count in train_per_class.values() if count)
    return {label: round(total / (present * count), 6) if count else 0.0 for label, count in train_per_class.items()}


def absent_labels(counts: dict[str, dict[str, Any]]) -> list[str]:
    """Labels with no row in any split: the data set does not have them (e.g. neutral in a two-class set)."""
    return [name for c, name in enumerate(LABEL_NAMES) if not any(counts[split]["per_class"][str(c)] for split in SPLITS)]


def _split_counts(rows: DataFrame) -> dict[str, dict[str, Any]]:
    counts = {split: {"rows": 0, "per_class": {str(i): 0 for i in range(len(LABEL_NAMES))}} for split in SPLITS}
    for row in rows.groupBy("split", "label").count().collect():
        counts[row["split"]]["per_class"][str(row["label"])] = row["count"]
        counts[row["split"]]["rows"] += row["count"]
    return counts


def _check_counts(counts: dict[str, dict[str, Any]], params: FeatureParams) -> None:
    selection = f"categories {', '.join(params.categories)}" if params.categories else "all categories"
    absent = absent_labels(counts)
    empty_classes = [LABEL_NAMES[int(c)] for c, n in counts["train"]["per_class"].items() if n == 0 and LABEL_NAMES[int(c)] not in absent]
    if empty_classes:
        raise FeatureError(
            f"snapshot {params.snapshot_uri} ({selection}): no {', '.join(empty_classes)} reviews in the train split "
            "although the data has some; select more data"
        )
    if len(absent) >= len(LABEL_NAMES) - 1:
        raise FeatureError(
            f"snapshot {params.snapshot_uri} ({selection}): only {', '.join(sorted(set(LABEL_NAMES) - set(absent)))} reviews; "
            "a sentiment model needs at least two classes"
        )
    for split in EVALUATION_SPLITS:
        missing = [LABEL_NAMES[int(c)] for c, n in counts[split]["per_class"].items() if n == 0 and LABEL_NAMES[int(c)] not in absent]
        if missing:
            raise FeatureError(
                f"snapshot {params.snapshot_uri} ({selection}): the {split} split has no {', '.join(missing)} reviews "
                f"even after the evaluation floor ({counts[split]['rows']} rows, {counts['train']['rows']} train rows); "
                "select more data"
            )


def _write_splits(spark: SparkSession, features: DataFrame, staging: str) -> None:
    """Write ``features`` as ``<staging>/<split>/part-*.parquet``; an empty split gets a schema-only file."""
    features.select(*OUTPUT_COLUMNS, "split").write.mode("overwrite").partitionBy("split").parquet(staging)
    empty = spark.createDataFrame([], features.select(*OUTPUT_COLUMNS).schema)
    for split in SPLITS:
        written = f"{staging}/split={split}"
        if hadoop_fs.exists(spark, written):
            hadoop_fs.rename(spark, written, f"{staging}/{split}")
        else:
            empty.coalesce(1).write.parquet(f"{staging}/{split}")


def build_features(spark: SparkSession, params: FeatureParams) -> dict[str, Any]:
    """Run the feature job on ``spark`` and return its manifest (also written to ``<output_uri>/manifest.json``)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    snapshot, input_rows = read_snapshot(spark, params.snapshot_uri, params.categories)
    rows, moved = prepare_rows(snapshot, params)
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    features = None
    output = params.output_uri.rstrip("/")
    parent, _, name = output.rpartition("/")
    if hadoop_fs.exists(spark, parent):  # what a killed try of this run left (a kill -9 runs no cleanup)
        for leftover in hadoop_fs.list_names(spark, parent):
            if leftover.startswith((f"_staging-{name}-", f"_retired-{name}-")):
                hadoop_fs.delete(spark, f"{parent}/{leftover}")
    staging = f"{parent}/_staging-{name}-{uuid.uuid4().hex}"
    try:
        counts = _split_counts(rows)
        _check_counts(counts, params)
        scaler = MinMaxScaler.fit(rows.where(F.col("split") == "train"))
        tokenize = partial(tokenize_batches, max_seq_length=params.max_seq_length, scaler=scaler, truncation=params.truncation)
        features = rows.mapInArrow(tokenize, OUTPUT_DDL)
        features = features.persist(StorageLevel.MEMORY_AND_DISK)
        _write_splits(spark, features, staging)
        rows.unpersist()
        tokens = features.agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum((F.col("token_count") > params.max_seq_length).cast("long")).alias("truncated"),
            F.avg("token_count").alias("mean_tokens"),
        ).first()
        manifest = _manifest(params, counts, scaler, input_rows, tokens, moved)
        if params.feature_store_uri:
            from include.features.store import append_features

            manifest["feature_store"] = append_features(spark, features, params.feature_store_uri, params.run_key)
        hadoop_fs.write_json(spark, f"{staging}/scaler.json", scaler.to_json())
        hadoop_fs.write_json(spark, f"{staging}/manifest.json", manifest)
        hadoop_fs.commit_dir(spark, staging, output)
    except BaseException:
        hadoop_fs.delete(spark, staging)
        raise
    finally:
        rows.unpersist()  # a no-op when already released after the splits were written
        if features is not None:
            features.unpersist()
    log.info("features of run %s committed to %s: %s", params.run_key, output, {s: c["rows"] for s, c in counts.items()})
    return manifest


def _manifest(
    params: FeatureParams, counts: dict[str, dict[str, Any]], scaler: MinMaxScaler, input_rows: int, tokens: Any,
    moved: dict[str, dict[str, int]],
) -> dict[str, Any]:
    absent = absent_labels(counts)
    return {
        "run_key": params.run_key,
        "snapshot_uri": params.snapshot_uri,
        "features_uri": params.output_uri,
        "categories": list(params.categories) if params.categories else None,
        "balance": params.balance,
        "seed": params.seed,
        "input_rows": input_rows,
        "splits": counts,
        "split_plan": {**asdict(params.plan), "bounds": params.plan.bounds(), "method": "sha256(salt + review_id) buckets"},
        "eval_floor": {
            "min_rows_per_class": params.eval_floor,
            "max_share_per_class": EVAL_FLOOR_MAX_SHARE,
            "moved_from_train": moved,
            "applied": "before balancing",
        },
        "class_weights": class_weights(counts["train"]["per_class"]),
        "label_names": list(LABEL_NAMES),
        "present_labels": [name for name in LABEL_NAMES if name not in absent],
        "absent_labels": absent,
        "scaler": scaler.to_json(),
        "tokenizer": tokenizer_info(),
        "max_seq_length": params.max_seq_length,
        "truncation": params.truncation,
        "truncation_rate": round(tokens["truncated"] / tokens["rows"], 6) if tokens["rows"] else 0.0,
        "truncated_rows": int(tokens["truncated"] or 0),
        "mean_token_count": round(float(tokens["mean_tokens"] or 0.0), 3),
    }


def parse_args(argv: list[str] | None = None) -> FeatureParams:
    """:class:`FeatureParams` from ``spark-submit`` arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot-uri", required=True)
    parser.add_argument("--output-uri", required=True, help="<data_root>/features/<run_key>")
    parser.add_argument("--run-key", help="default: the last path segment of --output-uri")
    parser.add_argument("--feature-store-uri", help="offline feature table to append to (default: none)")
    parser.add_argument("--categories", help="comma-separated product categories (default: all)")
    parser.add_argument("--balance", choices=("downsample", "none"), default="downsample")
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--truncation", choices=TRUNCATIONS, default="head_tail")
    parser.add_argument("--eval-floor", type=int, default=30, help="minimum rows per class in test and validation")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--replay-share", type=float, default=SplitPlan.replay)
    args = parser.parse_args(argv)
    return FeatureParams(
        snapshot_uri=args.snapshot_uri,
        output_uri=args.output_uri,
        run_key=args.run_key or args.output_uri.rstrip("/").rsplit("/", 1)[-1],
        categories=None if args.categories is None else tuple(c.strip() for c in args.categories.split(",") if c.strip()),
        balance=args.balance,
        max_seq_length=args.max_seq_length,
        truncation=args.truncation,
        eval_floor=args.eval_floor,
        seed=args.seed,
        plan=SplitPlan(replay=args.replay_share),
        feature_store_uri=args.feature_store_uri,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``spark-submit`` entry point: the session comes from the cluster (``getOrCreate``)."""
    from pyspark.sql import SparkSession

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    params = parse_args(argv)
    manifest = build_features(SparkSession.builder.getOrCreate(), params)
    print(json.dumps({"manifest_uri": f"{params.output_uri.rstrip('/')}/manifest.json", "splits": manifest["splits"]}))
    return manifest


if __name__ == "__main__":
    main()
