"""The offline feature table ``<data_root>/feature_store/reviews/``.

Parquet, hive-partitioned by ``product_category``. Its key is ``(review_id, event_time)`` where
``event_time`` is the review date (UTC midnight): a key appears at most once in the table. Appending a
run's rows rewrites the partitions of the categories it touches with the union of old and new rows,
keeping per key the row with the latest ``write_time`` — so rerunning a run, or a later run with new
features, replaces rows instead of duplicating them. Partitions are swapped by Spark's dynamic partition
overwrite from a fully written staging copy, so a failed append leaves the table as it was.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from include import hadoop_fs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

STORE_KEY: tuple[str, ...] = ("review_id", "event_time")
STORE_COLUMNS: tuple[str, ...] = (
    "review_id",
    "event_time",
    "label",
    "split",
    "text",
    "input_ids",
    "attention_mask",
    "token_count",
    "helpful_votes_scaled",
    "total_votes_scaled",
    "review_length_scaled",
    "run_key",
    "write_time",
    "product_category",
)


def append_features(spark: SparkSession, features: DataFrame, store_uri: str, run_key: str) -> dict[str, Any]:
    """Merge ``features`` (split outputs plus ``split`` and ``review_date`` columns) into the table at ``store_uri``.

    :returns: ``{"uri", "key", "rows_appended", "categories"}``.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    derived = {
        "event_time": F.col("review_date").cast("timestamp"),
        "run_key": F.lit(run_key),
        "write_time": F.current_timestamp(),
    }
    incoming = features.select(*[derived.get(name, F.col(name)).alias(name) for name in STORE_COLUMNS])
    categories = sorted(row[0] for row in incoming.select("product_category").distinct().collect())
    combined = incoming
    if hadoop_fs.exists(spark, store_uri):
        existing = spark.read.parquet(store_uri).where(F.col("product_category").isin(categories))
        combined = existing.select(*STORE_COLUMNS).unionByName(incoming)
    newest_first = Window.partitionBy(*STORE_KEY).orderBy(F.col("write_time").desc(), F.col("run_key").desc())
    merged = combined.withColumn("_n", F.row_number().over(newest_first)).where(F.col("_n") == 1).drop("_n")

    staging = f"{store_uri.rstrip('/')}-staging-{uuid.uuid4().hex}"
    try:
        merged.write.mode("overwrite").partitionBy("product_category").parquet(staging)
        (
            spark.read.parquet(staging)
            .write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy("product_category")
            .parquet(store_uri)
        )
    finally:
        hadoop_fs.delete(spark, staging)
    return {
        "uri": store_uri,
        "key": list(STORE_KEY),
        "rows_appended": incoming.count(),
        "categories": categories,
    }
