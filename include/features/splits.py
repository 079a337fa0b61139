"""Deterministic splits by a hash of ``review_id`` and per-class downsampling.

A review's split is a pure function of its id: ``bucket = int(sha256(SALT + review_id)[:8], 16) % 10000``,
and fixed bucket ranges map to ``replay``, ``train``, ``validation`` and ``test``. So a rerun gives identical
splits, a review never moves between splits when the snapshot grows, and the splits are stratified by
construction (the hash is independent of the label, so every class is cut in the same proportions, up to
sampling noise). The same function is available in plain Python (:func:`split_of`) and as a Spark column
(:func:`split_column`), and both agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

SPLIT_SALT = "reviewflow-split-v1:"
BUCKETS = 10_000
SPLITS: tuple[str, ...] = ("train", "validation", "test", "replay")


@dataclass(frozen=True)
class SplitPlan:
    """Shares of the hash space: ``replay`` is held out first, the rest is cut into train/validation/test.

    :param replay: share of all reviews held out for live-traffic replay (no model trains on it).
    :param train: share of the non-replay reviews for training.
    :param validation: share of the non-replay reviews for validation; test gets the remainder.
    """

    replay: float = 0.05
    train: float = 0.90
    validation: float = 0.05

    def __post_init__(self) -> None:
        if not 0 <= self.replay < 1:
            raise ValueError(f"replay share must be in [0, 1), got {self.replay}")
        if self.train <= 0 or self.validation <= 0 or self.train + self.validation >= 1:
            raise ValueError(
                f"train ({self.train}) and validation ({self.validation}) shares must be positive "
                "and leave a positive share for test"
            )

    def bounds(self) -> dict[str, int]:
        """Exclusive upper bucket of each split, in assignment order (replay, train, validation, test)."""
        replay = round(self.replay * BUCKETS)
        rest = BUCKETS - replay
        train = replay + round(self.train * rest)
        validation = train + round(self.validation * rest)
        return {"replay": replay, "train": train, "validation": validation, "test": BUCKETS}


def bucket_of(review_id: str) -> int:
    """The hash bucket (``0 <= b < BUCKETS``) of ``review_id``."""
    return int(hashlib.sha256((SPLIT_SALT + review_id).encode("utf-8")).hexdigest()[:8], 16) % BUCKETS


def split_of(review_id: str, plan: SplitPlan = SplitPlan()) -> str:
    """The split of ``review_id`` under ``plan``."""
    bucket = bucket_of(review_id)
    return next(name for name, upper in plan.bounds().items() if bucket < upper)


def bucket_column(review_id: Column) -> Column:
    """Spark column equal to :func:`bucket_of` of ``review_id``."""
    from pyspark.sql import functions as F

    digest = F.sha2(F.concat(F.lit(SPLIT_SALT), review_id), 256)
    return (F.conv(F.substring(digest, 1, 8), 16, 10).cast("long") % BUCKETS).cast("int")


def split_column(review_id: Column, plan: SplitPlan = SplitPlan()) -> Column:
    """Spark column equal to :func:`split_of` of ``review_id``."""
    from pyspark.sql import functions as F

    bucket = bucket_column(review_id)
    bounds = list(plan.bounds().items())
    expr = F.when(bucket < bounds[0][1], F.lit(bounds[0][0]))
    for name, upper in bounds[1:-1]:
        expr = expr.when(bucket < upper, F.lit(name))
    return expr.otherwise(F.lit(bounds[-1][0]))


def downsample(frame: DataFrame, label: str, review_id: str, seed: int) -> DataFrame:
    """Keep, of every class in ``frame``, as many rows as the smallest class has.

    The rows kept are those with the smallest ``sha256(f"{seed}:{review_id}")`` within their class, so the
    result depends only on the data and ``seed``, never on partitioning or task order.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    smallest = frame.groupBy(label).count().agg(F.min("count")).first()[0] or 0
    order = F.sha2(F.concat(F.lit(f"{seed}:"), F.col(review_id)), 256)
    rank = F.row_number().over(Window.partitionBy(label).orderBy(order, F.col(review_id)))
    return frame.withColumn("_rank", rank).where(F.col("_rank") <= smallest).drop("_rank")
