"""Registry operators on the aws backend (moto): provider registration, gate, human approval, recording, aliases."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.config import load_settings
from include.registry.base import APPROVED, CHALLENGER, CHAMPION, PENDING, REJECTED
from include.registry.lineage import LINEAGE_FIELDS
from include.registry.sagemaker_registry import SageMakerModelRegistry
from reviewflow.backends import registry_for
from reviewflow.operators import registration
from reviewflow.run_summary import run_summary_uri
from tests.conftest import AWS_CONN_ID, made
from tests.plugins.conftest import BUCKET, REGION
from tests.plugins.registry_steps import SNAPSHOT, answer, ask, gate, metrics, record, register

MODEL = "reviewflow-sentiment"
Calls = list[tuple[str, dict[str, Any]]]


def put_json(uri: str, payload: dict[str, Any]) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=key, Body=json.dumps(payload).encode())


def read_json(uri: str) -> dict[str, Any]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read())


def trained_run(key: str, f1: float, champion_f1: float | None) -> None:
    """What the SageMaker training job and evaluate leave in S3 for run ``key`` (the model archive is not read)."""
    models = f"s3://{BUCKET}/reviewflow/models/{key}"
    put_json(f"{models}/metrics.json", {"hyperparameters": {"epochs": 2, "seed": 42, "label_names": "negative,neutral,positive"}})
    champion = metrics(champion_f1) if champion_f1 is not None else None
    evaluation = {
        "challenger": metrics(f1), "champion": champion,
        "deltas": {"macro_f1": f1 - champion_f1, "accuracy": f1 - champion_f1,
                   "per_class_f1": {c: f1 - champion_f1 for c in ("negative", "neutral", "positive")},
                   "macro_f1_ci95": [f1 - champion_f1 - 0.01, f1 - champion_f1 + 0.01]} if champion else None,
        "evaluation_uri": f"{models}/evaluation.json", "challenger_macro_f1": f1, "champion_macro_f1": champion_f1,
        "delta_macro_f1": f1 - champion_f1 if champion else None, "test_rows": 200,
        "delta_macro_f1_ci95": [f1 - champion_f1 - 0.01, f1 - champion_f1 + 0.01] if champion else None,
    }
    put_json(run_summary_uri(load_settings(), key), {
        "run_key": key,
        "features": {"manifest_uri": f"s3://{BUCKET}/reviewflow/features/{key}/manifest.json"},
        "training": {"model_uri": f"{models}/sagemaker/reviewflow-{key}/output/model.tar.gz",
                     "metrics_uri": f"{models}/metrics.json", "plots_uri": f"{models}/plots", "validation_macro_f1": f1},
        "evaluation": evaluation,
    })


@pytest.fixture
def ingested(aws: Calls) -> Calls:
    put_json(run_summary_uri(load_settings(), SNAPSHOT), {
        "run_key": SNAPSHOT, "quality": {"report_json": f"s3://{BUCKET}/reviewflow/reports/{SNAPSHOT}/quality/report.json"}
    })
    return aws


def registry() -> SageMakerModelRegistry:
    found = registry_for(load_settings(), MODEL, AWS_CONN_ID)
    assert isinstance(found, SageMakerModelRegistry)
    return found


def test_register_uses_the_provider_operator_once_per_run(ingested: Calls) -> None:
    operator = registration.RegisterModelOperator(
        task_id="register", snapshot=SNAPSHOT, curated_uri="s3://x/curated", model_name=MODEL, aws_conn_id=AWS_CONN_ID
    )
    assert isinstance(operator, registration.SageMakerRegisterModelOperator)
    trained_run("run-1", 0.7, None)
    first = register("run-1", MODEL)
    assert register("run-1", MODEL) == first  # a retry finds the run's package
    assert (first["version"], first["status"]) == ("1", PENDING)
    [request] = made(ingested, "CreateModelPackage")
    spec = request["InferenceSpecification"]
    assert spec["SupportedContentTypes"] == ["application/json"] == spec["SupportedResponseMIMETypes"]
    [container] = spec["Containers"]
    assert container["ModelDataUrl"] == first["model_uri"] == f"s3://{BUCKET}/reviewflow/models/run-1/sagemaker/reviewflow-run-1/output/model.tar.gz"
    assert "huggingface-pytorch-inference" in container["Image"] and f".{REGION}." in container["Image"]
    statistics = request["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics == {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/reviewflow/models/run-1/metrics.json"}
    assert request["ModelApprovalStatus"] == PENDING and request["ModelPackageDescription"] == "reviewflow run run-1"

    version = registry().get_version("1")
    assert set(version.lineage) == set(LINEAGE_FIELDS) and all(version.lineage.values())
    assert version.lineage["quality_report"] == f"s3://{BUCKET}/reviewflow/reports/{SNAPSHOT}/quality/report.json"
    assert json.loads(version.lineage["training_params"])["label_names"] == "negative,neutral,positive"
    assert version.metrics["test_macro_f1"] == pytest.approx(0.7) and "champion_test_macro_f1" not in version.metrics
    assert read_json(run_summary_uri(load_settings(), "run-1"))["registry"]["version"] == "1"


def test_register_refuses_a_model_that_is_not_a_sagemaker_archive(ingested: Calls) -> None:
    trained_run("run-x", 0.7, None)
    summary = read_json(run_summary_uri(load_settings(), "run-x"))
    summary["training"]["model_uri"] = "/tmp/models/run-x/model"
    put_json(run_summary_uri(load_settings(), "run-x"), summary)
    with pytest.raises(AirflowFailException, match="register of run run-x: model_uri '/tmp/models/run-x/model'"):
        register("run-x", MODEL)
    assert made(ingested, "CreateModelPackage") == []


def test_auto_gate_approves_with_update_model_package_then_champion_and_challenger(ingested: Calls) -> None:
    trained_run("run-1", 0.70, None)
    register("run-1", MODEL)
    assert gate("run-1", MODEL) == "record_approval"
    result, events = record("run-1", MODEL)
    assert result["role"] == CHAMPION and events == []
    [update, *_] = made(ingested, "UpdateModelPackage")
    assert update["ModelApprovalStatus"] == APPROVED
    assert update["ApprovalDescription"].startswith("reviewflow-gate: test macro-F1 0.7000 >= minimum 0.5000")
    champion = registry().champion()
    assert (champion.version, champion.status, champion.approved_by) == ("1", APPROVED, "reviewflow-gate")
    assert set(champion.lineage) == set(LINEAGE_FIELDS)  # approval and alias updates keep the lineage

    trained_run("run-2", 0.69, 0.70)
    register("run-2", MODEL)
    assert gate("run-2", MODEL) == "record_approval"
    result, events = record("run-2", MODEL)
    assert result["role"] == CHALLENGER
    assert registry().version_for_alias(CHALLENGER).version == "2" and registry().champion().version == "1"
    [event] = events
    assert event.extra["version"] == "2" and event.extra["champion_version"] == "1"
    assert event.extra["champion_model_uri"].endswith("run-1/output/model.tar.gz")

    trained_run("run-3", 0.60, 0.70)  # 0.10 below the champion
    register("run-3", MODEL)
    with pytest.raises(AirflowFailException, match="worse than the champion .*delta -0.1000"):
        gate("run-3", MODEL)
    rejected = registry().get_version("3")
    assert (rejected.status, rejected.approved_by, rejected.aliases) == (REJECTED, "reviewflow-gate", ())
    assert made(ingested, "UpdateModelPackage")[-1]["ModelApprovalStatus"] == REJECTED
    assert [v.aliases for v in registry().list_versions()] == [(CHAMPION,), (CHALLENGER,), ()]


def test_human_approval_writes_the_reviewer_to_the_package(ingested: Calls, monkeypatch: pytest.MonkeyPatch) -> None:
    trained_run("run-h", 0.70, None)
    register("run-h", MODEL)
    assert gate("run-h", MODEL, mode="manual") == "human_approval"
    request = ask("run-h", MODEL, monkeypatch)
    assert f"{MODEL} v1" in request["subject"] and "model.tar.gz" in request["body"]
    answer("run-h", MODEL, chosen_options=["Approve"], responded_by_user={"id": "1", "name": "alice"},
            params_input={"comment": "better on neutral, see the report"})
    update = made(ingested, "UpdateModelPackage")[-1]
    assert (update["ModelApprovalStatus"], update["ApprovalDescription"]) == (
        APPROVED, "alice: better on neutral, see the report"
    )
    result, _ = record("run-h", MODEL, mode="manual")
    version = registry().get_version("1")
    assert (version.status, version.approved_by, version.approval_comment) == (APPROVED, "alice", "better on neutral, see the report")
    assert result["role"] == CHAMPION and version.aliases == (CHAMPION,)
