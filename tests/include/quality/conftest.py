"""Curated snapshots for the quality tests, in the ingestion stage's layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from tests.include.quality.quality_data import review_table


@pytest.fixture
def write_snapshot(tmp_path: Path) -> Callable[[list[dict[str, Any]], str], str]:
    """``write_snapshot(records, snapshot_id)`` → URI of ``<tmp>/curated/reviews/snapshot=<id>``."""

    def write(records: list[dict[str, Any]], snapshot: str = "s1") -> str:
        folder = tmp_path / "data" / "curated" / "reviews" / f"snapshot={snapshot}"
        ds.write_dataset(
            review_table(records),
            folder,
            format="parquet",
            partitioning=["product_category"],
            partitioning_flavor="hive",
            existing_data_behavior="delete_matching",
        )
        return str(folder)

    return write
