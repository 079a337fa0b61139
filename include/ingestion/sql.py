"""Rendering of the ingestion SQL kept in ``include/sql/`` for DuckDB and Athena.

The classification and selection queries are shared by both engines; only the
relation that exposes the raw files differs (``include/sql/duckdb``, ``include/sql/athena``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from include.ingestion.schema import EARLIEST_REVIEW_DATE, REVIEW_COLUMNS, SourceFormat

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def sql_template(name: str) -> str:
    """The text of ``include/sql/<name>.sql`` without its leading comment lines."""
    lines = (SQL_DIR / f"{name}.sql").read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("--")).strip()


def quote_literal(value: str) -> str:
    """A SQL string literal (the same in Trino and DuckDB)."""
    return "'" + value.replace("'", "''") + "'"


def category_filter(categories: list[str] | None) -> str:
    """A predicate keeping only ``categories`` (all rows when ``None`` or empty)."""
    if not categories:
        return "TRUE"
    return "product_category IN (" + ", ".join(quote_literal(c) for c in categories) + ")"


Engine = Literal["duckdb", "athena"]
# Each engine's 64-bit hash of the row's 15 raw fields, a missing field counting as empty: the only
# functions the two dialects spell differently. Trino hashes the fields joined by tabs (which no
# field holds); DuckDB's hash takes the fields as arguments, which spares building that string
# (half the time of the concatenation's hash on 1M rows).
RAW_FIELDS = [f"coalesce({column}, '')" for column in REVIEW_COLUMNS]
ROW_HASH: dict[Engine, str] = {
    "duckdb": f"hash({', '.join(RAW_FIELDS)})",
    "athena": f"from_big_endian_64(xxhash64(to_utf8({' || chr(9) || '.join(RAW_FIELDS)})))",
}


def checked_relation(raw_reviews: str, engine: Engine, latest_review_date: dt.date) -> str:
    """The shared field checks over ``raw_reviews`` (``check_reviews.sql``), as a parenthesised relation.

    :param latest_review_date: the newest acceptable ``review_date`` (the run's date).
    """
    query = sql_template("check_reviews").format(
        raw_reviews=raw_reviews,
        row_hash=ROW_HASH[engine],
        earliest_review_date=EARLIEST_REVIEW_DATE.isoformat(),
        latest_review_date=latest_review_date.isoformat(),
    )
    return "(" + query + ")"


def classified_relation(raw_reviews: str, engine: Engine, latest_review_date: dt.date) -> str:
    """The shared classification over ``raw_reviews``: field checks, then the review-id rule, as one relation.

    :param latest_review_date: the newest acceptable ``review_date`` (the run's date).
    """
    checked = checked_relation(raw_reviews, engine, latest_review_date)
    return "(" + sql_template("classify_reviews").format(checked=checked) + ")"


def selects(classified: str, categories: list[str] | None) -> dict[str, str]:
    """The curated, rejected and count SELECTs over a ``classified`` relation."""
    where = category_filter(categories)
    return {
        "curated": sql_template("curated_reviews").format(classified=classified, category_filter=where),
        "rejected": sql_template("rejected_reviews").format(classified=classified),
        "counts": sql_template("count_reviews").format(classified=classified, category_filter=where),
    }


def duckdb_raw_relation(fmt: SourceFormat, read_as: dict[str, str]) -> str:
    """The DuckDB relation exposing raw files as string columns.

    ``read_as`` maps each path DuckDB reads to the source file name its rows report
    (they differ where a compressed source was decompressed to a scratch copy).
    """
    files = "[" + ", ".join(quote_literal(f) for f in read_as) + "]"
    columns = "{" + ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in REVIEW_COLUMNS) + "}"
    template = sql_template(f"duckdb/raw_reviews_{fmt}")
    return "(" + template.format(source_files=files, columns=columns, source_file=source_name("filename", read_as)) + ")"


def source_name(column: str, read_as: dict[str, str]) -> str:
    """A SQL expression turning the read path in ``column`` into its source file name."""
    renamed = {read: source for read, source in read_as.items() if read != source}
    if not renamed:
        return column
    cases = " ".join(f"WHEN {quote_literal(read)} THEN {quote_literal(source)}" for read, source in renamed.items())
    return f"CASE {column} {cases} ELSE {column} END"


def athena_raw_relation(fmt: SourceFormat, database: str, raw_table: str) -> str:
    """The Athena relation exposing the raw table of a run as string columns."""
    return sql_template(f"athena/raw_reviews_{fmt}").format(database=database, raw_table=raw_table)
