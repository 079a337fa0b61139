"""Shared fixtures for the Airflow adapters: moto with the aws backend configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import AwsCalls, aws_connection

BUCKET = "reviewflow-test"
REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AwsCalls]:
    """moto for every AWS service reached only through the connection ``reviewflow_test_aws`` (no ``aws_default``,
    no credentials elsewhere: :func:`tests.conftest.aws_connection`), the aws backend configured, pages also
    published to SNS, and a log of every AWS API call."""
    for key, value in {
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
    with aws_connection(monkeypatch, REGION) as calls:
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        pages = boto3.client("sns", region_name=REGION).create_topic(Name="reviewflow-pages")["TopicArn"]
        monkeypatch.setenv("REVIEWFLOW_SNS_TOPIC_ARN", pages)
        yield calls
