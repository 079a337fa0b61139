"""Typed review rows in the curated snapshot's schema, for the quality tests."""

from __future__ import annotations

from typing import Any

from include.sample_data import SampleSpec, curated_records, generate_rows


def review_dicts(rows: int, seed: int = 3) -> list[dict[str, Any]]:
    """Well-formed, typed review rows (ints and dates converted)."""
    return curated_records(generate_rows(SampleSpec(rows, seed)))
