"""The Athena statements of one ingestion run, rendered from ``include/sql``.

Every object is scoped by run: the raw table reads the run's raw zone, the CTAS
tables write to snapshot-scoped S3 locations, and the stable view
``reviews_curated`` is re-pointed only after the counts pass.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from include.ingestion.schema import SourceFormat
from include.ingestion.sql import athena_raw_relation, classified_relation, selects, sql_template

STATEMENTS = ("create_raw_table", "ctas_rejected", "ctas_curated", "count_reviews", "point_curated_view")


def table_suffix(run_key: str) -> str:
    """A Glue-safe table-name suffix for ``run_key`` (lower case, ``[a-z0-9_]``)."""
    return re.sub(r"[^a-z0-9]+", "_", run_key.lower()).strip("_")


def run_objects(*, database: str, data_root: str, run_key: str) -> dict[str, str]:
    """The names and S3 locations of the catalog objects of the run ``run_key``."""
    suffix = table_suffix(run_key)
    return {
        "database": database,
        "raw_table": f"raw_reviews_{suffix}",
        "curated_table": f"reviews_curated_{suffix}",
        "rejected_table": f"reviews_rejected_{suffix}",
        "raw_location": f"{data_root}/raw/reviews/run={run_key}/",
        "curated_location": f"{data_root}/curated/reviews/snapshot={run_key}/",
        "rejected_location": f"{data_root}/rejected/reviews/snapshot={run_key}/",
    }


def athena_statement(
    statement: str,
    *,
    database: str,
    data_root: str,
    run_key: str,
    fmt: SourceFormat,
    latest_review_date: dt.date,
    categories: list[str] | None = None,
) -> str:
    """The SQL of ``statement`` (one of :data:`STATEMENTS`) for the run ``run_key``.

    :param latest_review_date: the newest acceptable ``review_date`` (the run's date).
    """
    names = run_objects(database=database, data_root=data_root, run_key=run_key)
    classified = classified_relation(athena_raw_relation(fmt, database, names["raw_table"]), "athena", latest_review_date)
    queries = selects(classified, categories)
    if statement == "create_raw_table":
        return sql_template(f"athena/create_raw_table_{fmt}").format(**names)
    if statement == "ctas_rejected":
        return sql_template("athena/ctas_rejected").format(rejected_select=queries["rejected"], **names)
    if statement == "ctas_curated":
        return sql_template("athena/ctas_curated").format(curated_select=queries["curated"], **names)
    if statement == "count_reviews":
        return queries["counts"]
    if statement == "point_curated_view":
        return sql_template("athena/point_curated_view").format(**names)
    raise ValueError(f"unknown Athena statement {statement!r}; expected one of {STATEMENTS}")


def request_token(dag_id: str, run_id: str, task_id: str, query: str, generation: int = 0) -> str:
    """Athena ``ClientRequestToken`` for the ``generation``-th query of a task in a run: the same on every retry."""
    parts = (dag_id, run_id, task_id, query) + ((str(generation),) if generation else ())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
