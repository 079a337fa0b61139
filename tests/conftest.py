"""Shared fixtures: one local SparkSession per test session (it takes ~10 s to start)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

# py4j logs at INFO from __del__ while the interpreter shuts down, after pytest closed the
# log handlers ("--- Logging error ---"); its INFO lines carry nothing a test needs.
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from include.spark import local_spark_session

    session = local_spark_session("reviewflow-tests")
    yield session
    session.stop()
