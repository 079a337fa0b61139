"""Shared fixtures for the Airflow adapters: moto with the aws backend configured."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import AWS_CONN_ID, record_aws_calls

BUCKET = "reviewflow-test"
REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """moto for every AWS service, the aws backend configured, and a log of every AWS API call."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": json.dumps({"conn_type": "aws", "extra": {"region_name": REGION}}),
        "AIRFLOW_VAR_REVIEWFLOW_AWS_CONN_ID": AWS_CONN_ID,
        "REVIEWFLOW_BACKEND": "aws",
        "REVIEWFLOW_DATA_ROOT": f"s3://{BUCKET}/reviewflow",
        "REVIEWFLOW_ALLOWED_ROOTS": f"s3://{BUCKET}",
        "REVIEWFLOW_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
        "REVIEWFLOW_DEADLINE_ALERTS": "off",  # dag.test() cannot finish a DAG with one (include/config.py)
        "AIRFLOW_VAR_REVIEWFLOW_ATHENA_DATABASE": "reviews_db",
        "AIRFLOW_VAR_REVIEWFLOW_SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sm",
        "AIRFLOW_VAR_REVIEWFLOW_PROCESSING_INSTANCE_TYPE": "ml.m5.2xlarge",
    }.items():
        monkeypatch.setenv(key, value)
    calls = record_aws_calls(monkeypatch)
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield calls
