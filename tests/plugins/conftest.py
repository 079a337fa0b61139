"""Shared fixtures for the Airflow adapters: moto with the aws backend configured; a SageMaker registry with
two versions and the endpoint operator deploying them (the endpoint and rollout aws tests)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from include.registry.sagemaker_registry import SageMakerModelRegistry
from reviewflow.operators.endpoint import DeployEndpointOperator, SageMakerDeployEndpointOperator
from tests.conftest import AWS_CONN_ID, AwsCalls, aws_connection

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


ENDPOINT = "reviews-live"


@pytest.fixture
def moto_update_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    def update_endpoint(self: SageMakerResponse) -> ActionResult:
        endpoint = self.sagemaker_backend.endpoints[self._get_param("EndpointName")]
        config = self.sagemaker_backend.describe_endpoint_config(self._get_param("EndpointConfigName"))
        endpoint.endpoint_config_name = config["EndpointConfigName"]
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.data_capture_config = config["DataCaptureConfig"]
        return ActionResult({"EndpointArn": endpoint.arn})

    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)


@pytest.fixture
def registered(aws: AwsCalls, moto_update_endpoint: None, tmp_path: Path, served_registry: Path) -> AwsCalls:
    """Versions 1 and 2 in the SageMaker registry, their training model.tar.gz in S3."""
    s3 = boto3.client("s3", region_name=REGION)
    registry = SageMakerModelRegistry(boto3.client("sagemaker", region_name=REGION))
    for version in ("1", "2"):
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            for path in (served_registry / "models" / f"run-{version}" / "model").iterdir():
                tar.add(path, arcname=path.name)
        key = f"reviewflow/models/run-{version}/output/model.tar.gz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=archive.getvalue())
        lineage = {"training_metrics": f"s3://{BUCKET}/reviewflow/models/run-{version}/metrics.json"}
        assert registry.register_version(f"run-{version}", f"s3://{BUCKET}/{key}", {"test_macro_f1": 0.7}, lineage).version == version
    return aws


def deploy(variants: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    operator = DeployEndpointOperator(
        task_id="deploy", variants=variants, endpoint_name=ENDPOINT, port=0, aws_conn_id=AWS_CONN_ID, **kwargs
    )
    assert isinstance(operator, SageMakerDeployEndpointOperator)
    return operator.execute({})
