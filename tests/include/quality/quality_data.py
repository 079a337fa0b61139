"""Typed review rows and tables in the curated snapshot's schema, for the quality tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from include.sample_data import COLUMNS, SampleSpec, generate_rows

INT_COLUMNS = ("star_rating", "helpful_votes", "total_votes")


def review_dicts(rows: int, seed: int = 3) -> list[dict[str, Any]]:
    """Well-formed, typed review rows (ints and dates converted)."""
    out = []
    for row in generate_rows(SampleSpec(rows, seed)):
        record: dict[str, Any] = dict(zip(COLUMNS, row, strict=True))
        for name in INT_COLUMNS:
            record[name] = int(record[name])
        record["review_date"] = dt.date.fromisoformat(record["review_date"])
        out.append(record)
    return out


def review_table(records: list[dict[str, Any]]) -> pa.Table:
    types = {name: pa.int32() if name in INT_COLUMNS else pa.string() for name in COLUMNS}
    types["review_date"] = pa.date32()
    return pa.table({name: pa.array([r[name] for r in records], types[name]) for name in COLUMNS})
