"""Shared fixtures: one local SparkSession per test session (it takes ~10 s to start); AWS call logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

AwsCalls = list[tuple[str, dict[str, Any]]]

# py4j logs at INFO from __del__ while the interpreter shuts down, after pytest closed the
# log handlers ("--- Logging error ---"); its INFO lines carry nothing a test needs.
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from include.spark import local_spark_session

    session = local_spark_session("reviewflow-tests")
    yield session
    session.stop()


def record_aws_calls(monkeypatch: pytest.MonkeyPatch) -> AwsCalls:
    """Log every botocore API call (operation name, parameters) made while ``monkeypatch`` is active."""
    import botocore.client

    calls: AwsCalls = []
    original = botocore.client.BaseClient._make_api_call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append((operation, params))
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return calls


def made(calls: AwsCalls, operation: str) -> list[dict[str, Any]]:
    """The parameters of each ``operation`` call in ``calls``."""
    return [params for name, params in calls if name == operation]


def form_requires(param: Mapping[str, Any]) -> bool:
    """Whether Airflow 3.3's trigger and approval forms mark a param (as the API serves it:
    ``{"value", "schema", ...}``) required, refusing to submit it empty.

    The same rule as the UI's FlexibleForm (``airflow/ui``, ``isRequired``): a schema ``type``
    that does not include ``"null"``. An emptied field is sent as null.
    """
    kind = param["schema"].get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)
