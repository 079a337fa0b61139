"""The built-in engine: a whole suite's metrics in one Spark query, with Deequ's definitions.

Every metric is one aggregate expression, so all of them are computed by a single
``DataFrame.agg`` over one scan of the data. ``Uniqueness`` needs each value's frequency;
it is attached to every row by a window ``COUNT(*) OVER (PARTITION BY columns)`` inside
the same query (one shuffle per distinct column set), never a separate job.

Definitions (``n`` = number of rows; a metric with no value, e.g. ``Minimum`` of an
all-null column or any ratio over zero rows, is *empty* and fails its constraint, as in Deequ):

``Size``                 ``n``.
``Completeness(c)``      non-null values of ``c`` / ``n``.
``Uniqueness(cs)``       values (tuples of ``cs``) that occur exactly once / rows where at
                         least one of ``cs`` is non-null (Deequ's ``FrequenciesAndNumRows``).
``Compliance(name)``     rows where the SQL predicate is true / ``n``; a NULL predicate
                         counts as not compliant. ``isContainedIn(c, vs)`` is the predicate
                         ``c IS NULL OR c IN (vs)``, so nulls comply (Deequ's definition).
``PatternMatch(c)``      rows where ``regexp_extract(c, pattern, 0)`` is non-empty / ``n``
                         (nulls do not match).
``Minimum(c)``, ``Maximum(c)``  min / max of the non-null values, as a double.
``ApproxCountDistinct(c)``  HyperLogLog++ distinct count of non-null values (relative
                         standard deviation 0.05, Deequ's and Spark's default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.quality.suite import Metric

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def _frequency_column(columns: tuple[str, ...]) -> str:
    return "__freq_" + "__".join(columns)


def _any_non_null(columns: tuple[str, ...]) -> Column:
    from pyspark.sql import functions as F

    condition = F.col(columns[0]).isNotNull()
    for name in columns[1:]:
        condition = condition | F.col(name).isNotNull()
    return condition


def metric_expression(metric: Metric) -> Column:
    """The aggregate expression (a double, or NULL when empty) computing ``metric``."""
    from pyspark.sql import functions as F

    rows = F.count(F.lit(1)).cast("double")

    def ratio(condition: Column) -> Column:
        return F.try_divide(F.sum(F.when(condition, 1).otherwise(0)).cast("double"), rows)

    analyzer = metric.analyzer
    if analyzer == "Size":
        expression = rows
    elif analyzer == "Completeness":
        expression = ratio(F.col(metric.columns[0]).isNotNull())
    elif analyzer == "Compliance":
        expression = F.try_divide(F.sum(F.expr(metric.predicate).cast("int")).cast("double"), rows)
    elif analyzer == "PatternMatch":
        expression = ratio(F.regexp_extract(F.col(metric.columns[0]), metric.pattern, 0) != F.lit(""))
    elif analyzer == "Minimum":
        expression = F.min(F.col(metric.columns[0]).cast("double"))
    elif analyzer == "Maximum":
        expression = F.max(F.col(metric.columns[0]).cast("double"))
    elif analyzer == "ApproxCountDistinct":
        expression = F.approx_count_distinct(F.col(metric.columns[0]), rsd=0.05).cast("double")
    elif analyzer == "Uniqueness":
        counted = _any_non_null(metric.columns)
        unique = counted & (F.col(_frequency_column(metric.columns)) == 1)
        expression = F.try_divide(
            F.sum(F.when(unique, 1).otherwise(0)).cast("double"),
            F.sum(F.when(counted, 1).otherwise(0)).cast("double"),
        )
    else:
        raise ValueError(f"the spark engine has no definition of the {analyzer} metric")
    return expression.alias(metric.key)


def compute_metrics(df: DataFrame, metrics: list[Metric]) -> dict[str, float | None]:
    """Compute ``metrics`` on ``df`` in one query; returns ``{metric.key: value or None}``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    grouped = {m.columns for m in metrics if m.analyzer == "Uniqueness"}
    frame = df
    for columns in sorted(grouped):
        frame = frame.withColumn(_frequency_column(columns), F.count(F.lit(1)).over(Window.partitionBy(*columns)))
    row = frame.agg(*(metric_expression(m) for m in metrics)).collect()[0]
    return {m.key: (None if row[m.key] is None else float(row[m.key])) for m in metrics}
