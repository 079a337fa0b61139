"""The built-in engine: a whole suite's metrics in one Spark query, with Deequ's definitions.

Every metric is one aggregate expression over a small per-row value (a 0/1 flag, a
number or a short key), so all of them are computed by a single ``DataFrame.agg`` over one
scan of the data. ``Uniqueness`` needs each value's frequency: the same query cross-joins
that aggregate with a hash aggregate (``GROUP BY`` the key) per key set, which reads only
the key columns and needs no sort; Spark runs it all as one job, never a query per check.

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
    return "__seen_once_" + "__".join(columns)


def _any_non_null(columns: tuple[str, ...]) -> Column:
    from pyspark.sql import functions as F

    condition = F.col(columns[0]).isNotNull()
    for name in columns[1:]:
        condition = condition | F.col(name).isNotNull()
    return condition


def row_value(metric: Metric) -> Column | None:
    """The small per-row value ``metric`` aggregates (a 0/1 flag, a number or a short key).

    Aggregating these rather than the columns keeps the single pass narrow: wide text
    columns (review bodies) are read once, reduced to a flag, and never carried further.
    """
    from pyspark.sql import functions as F

    analyzer = metric.analyzer
    if analyzer == "Size":
        return None
    if analyzer == "Uniqueness":
        return _any_non_null(metric.columns).cast("int")
    if analyzer == "Completeness":
        return F.col(metric.columns[0]).isNotNull().cast("int")
    if analyzer == "Compliance":
        return F.expr(metric.predicate).cast("int")
    if analyzer == "PatternMatch":
        return F.when(F.regexp_extract(F.col(metric.columns[0]), metric.pattern, 0) != F.lit(""), 1).otherwise(0)
    if analyzer in ("Minimum", "Maximum"):
        return F.col(metric.columns[0]).cast("double")
    if analyzer == "ApproxCountDistinct":
        return F.col(metric.columns[0])
    raise ValueError(f"the spark engine has no definition of the {analyzer} metric")


def metric_expression(metric: Metric, value_column: str) -> Column:
    """The aggregate expression (a double, or NULL when empty) computing ``metric`` from its row value."""
    from pyspark.sql import functions as F

    rows = F.count(F.lit(1)).cast("double")
    value = F.col(value_column)
    analyzer = metric.analyzer
    if analyzer == "Size":
        expression = rows
    elif analyzer in ("Completeness", "Compliance", "PatternMatch"):
        # A NULL value (a predicate on NULLs) is not summed: it counts as not compliant.
        expression = F.try_divide(F.sum(value).cast("double"), rows)
    elif analyzer == "Minimum":
        expression = F.min(value)
    elif analyzer == "Maximum":
        expression = F.max(value)
    elif analyzer == "ApproxCountDistinct":
        expression = F.approx_count_distinct(value, rsd=0.05).cast("double")
    elif analyzer == "Uniqueness":
        # Rows with a non-null key here; the values seen exactly once come from the key's own aggregate.
        expression = F.sum(value).cast("double")
    else:
        raise ValueError(f"the spark engine has no definition of the {analyzer} metric")
    return expression.alias(metric.key)


def _values_seen_once(df: DataFrame, columns: tuple[str, ...]) -> DataFrame:
    """One row, one column: how many non-null values (tuples) of ``columns`` occur exactly once."""
    from pyspark.sql import functions as F

    frequencies = df.where(_any_non_null(columns)).groupBy(*columns).count()
    return frequencies.agg(F.sum(F.when(F.col("count") == 1, 1).otherwise(0)).alias(_frequency_column(columns)))


def compute_metrics(df: DataFrame, metrics: list[Metric]) -> dict[str, float | None]:
    """Compute ``metrics`` on ``df`` in one query; returns ``{metric.key: value or None}``.

    The query is the global aggregate of every metric, cross-joined with one hash aggregate
    per ``Uniqueness`` key set (reading only the key columns); Spark plans it as one job.
    """

    names = [f"__value_{index}" for index in range(len(metrics))]
    row_values = [(row_value(m), name) for m, name in zip(metrics, names, strict=True)]
    projected = df.select(*(value.alias(name) for value, name in row_values if value is not None))
    result = projected.agg(*(metric_expression(m, name) for m, name in zip(metrics, names, strict=True)))
    grouped = sorted({m.columns for m in metrics if m.analyzer == "Uniqueness"})
    for columns in grouped:
        result = result.crossJoin(_values_seen_once(df, columns))
    row = result.collect()[0]
    output: dict[str, float | None] = {}
    for metric in metrics:
        value = row[metric.key]
        if metric.analyzer == "Uniqueness":
            seen_once = row[_frequency_column(metric.columns)]
            value = None if not value else (seen_once or 0) / value
        output[metric.key] = None if value is None else float(value)
    return output
