"""Shared fixtures: one local SparkSession per test session (it takes ~10 s to start)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from include.spark import local_spark_session

    session = local_spark_session("reviewflow-tests")
    yield session
    session.stop()
