"""Curated snapshots for the quality tests, in the ingestion stage's layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from include.sample_data import write_curated_snapshot


@pytest.fixture
def write_snapshot(tmp_path: Path) -> Callable[[list[dict[str, Any]], str], str]:
    """``write_snapshot(records, snapshot_id)`` → URI of ``<tmp>/curated/reviews/snapshot=<id>``."""

    def write(records: list[dict[str, Any]], snapshot: str = "s1") -> str:
        return write_curated_snapshot(tmp_path / "data" / "curated" / "reviews" / f"snapshot={snapshot}", records)

    return write
