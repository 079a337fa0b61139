"""Curated snapshots for tests, laid out as the ingestion stage writes them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from include.sample_data import COLUMNS

INT_COLUMNS = ("star_rating", "helpful_votes", "total_votes")


def snapshot_table(rows: Iterable[tuple[str, ...]]) -> pa.Table:
    """``rows`` (tuples of strings in ``COLUMNS`` order) as a table with the curated column types."""
    columns: dict[str, list] = {name: [] for name in COLUMNS}
    for row in rows:
        for name, value in zip(COLUMNS, row, strict=True):
            columns[name].append(value)
    arrays = {}
    for name, values in columns.items():
        if name in INT_COLUMNS:
            arrays[name] = pa.array([int(v) for v in values], pa.int32())
        elif name == "review_date":
            arrays[name] = pa.array([dt.date.fromisoformat(v) for v in values], pa.date32())
        else:
            arrays[name] = pa.array(values, pa.string())
    return pa.table(arrays)


def write_snapshot(root: Path, rows: Iterable[tuple[str, ...]]) -> str:
    """Write ``rows`` as ``root/product_category=<c>/*.parquet`` (hive partitioning); return the URI."""
    ds.write_dataset(
        snapshot_table(rows),
        root,
        format="parquet",
        partitioning=["product_category"],
        partitioning_flavor="hive",
        existing_data_behavior="overwrite_or_ignore",
    )
    return str(root)
