"""The aws registry on moto's SageMaker: package request, idempotent registration, approval, aliases, metadata limits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from include.registry.base import APPROVED, CHALLENGER, CHAMPION, PENDING, REJECTED, ROLLED_BACK
from include.registry.lineage import LINEAGE_FIELDS
from include.registry.sagemaker_registry import (
    MAX_VALUE_LENGTH,
    SageMakerModelRegistry,
    decode_metadata,
    encode_metadata,
    huggingface_inference_image_uri,
)
from tests.conftest import made, record_aws_calls

REGION = "us-east-1"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:test"
METRICS = {"test_macro_f1": 0.71, "test_accuracy": 0.74}
# SageMaker's CustomerMetadataValue pattern (Unicode letters/spaces/digits and _.:/=+-@), restricted to ASCII here.
VALUE_PATTERN = re.compile(r"[A-Za-z0-9 _.:/=+\-@]{1,256}")


def lineage(key: str) -> dict[str, str]:
    values = {name: f"s3://bucket/reviewflow/{name}/{key}" for name in LINEAGE_FIELDS}
    values["training_params"] = json.dumps({"epochs": 2, "label_names": "negative,neutral,positive", "lr": 1e-4})
    values["training_metrics"] = f"s3://bucket/reviewflow/models/{key}/metrics.json"
    values["run_key"] = key
    return values


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """moto, credentials for it, and a log of every SageMaker API call."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    log = record_aws_calls(monkeypatch)
    with mock_aws():
        yield log


@pytest.fixture
def registry(calls: list[tuple[str, dict[str, Any]]]) -> SageMakerModelRegistry:
    return SageMakerModelRegistry(boto3.client("sagemaker", region_name=REGION), "reviews-model", image_uri=IMAGE)


def register(registry: SageMakerModelRegistry, key: str) -> Any:
    return registry.register_version(key, f"s3://bucket/reviewflow/models/{key}/model.tar.gz", METRICS, lineage(key))


def test_metadata_encoding_round_trips_within_sagemakers_limits() -> None:
    values = {
        "plain": "s3://bucket/key=1/a-b_c.json",
        "json": json.dumps({"a": [1, 2], "b": "x, y"}),
        "long": "z" * 600,
        "unicode": "très bien, merci",
        "empty": "",
    }
    encoded = encode_metadata(values)
    assert encoded["plain"] == values["plain"] and "empty" not in encoded and "json" not in encoded
    assert len([k for k in encoded if k.startswith("long.b64.")]) == 4  # 800 base64 characters
    assert all(VALUE_PATTERN.fullmatch(v) and len(v) <= MAX_VALUE_LENGTH for v in encoded.values())
    assert decode_metadata(encoded) == {k: v for k, v in values.items() if v}


def test_registration_is_idempotent_and_describes_a_json_model(
    registry: SageMakerModelRegistry, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    first = register(registry, "run-1")
    assert register(registry, "run-1") == first  # a retry
    [request] = made(calls, "CreateModelPackage")
    assert (first.version, first.status, first.run_key, first.approved_by, first.aliases) == ("1", PENDING, "run-1", "", ())
    assert first.model_uri == "s3://bucket/reviewflow/models/run-1/model.tar.gz"
    assert first.metrics == METRICS and first.lineage == lineage("run-1")
    assert request["ModelApprovalStatus"] == PENDING and request["ModelPackageGroupName"] == "reviews-model"
    spec = request["InferenceSpecification"]
    assert spec["SupportedContentTypes"] == ["application/json"] == spec["SupportedResponseMIMETypes"]
    assert spec["Containers"] == [{"Image": IMAGE, "ModelDataUrl": first.model_uri}]
    statistics = request["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics == {"ContentType": "application/json", "S3Uri": "s3://bucket/reviewflow/models/run-1/metrics.json"}
    assert request["MetadataProperties"]["CommitId"] == "s3://bucket/reviewflow/git_commit/run-1"
    properties = request["CustomerMetadataProperties"]
    assert len(properties) <= 50 and all(VALUE_PATTERN.fullmatch(v) for v in properties.values())

    assert register(registry, "run-2").version == "2"
    assert [(v.version, v.run_key) for v in registry.list_versions()] == [("1", "run-1"), ("2", "run-2")]
    assert len(made(calls, "CreateModelPackage")) == 2 and len(made(calls, "CreateModelPackageGroup")) == 1


def test_registration_refuses_what_sagemaker_cannot_serve(registry: SageMakerModelRegistry) -> None:
    with pytest.raises(ValueError, match=r"model_uri '/tmp/model': the SageMaker registry needs an s3://"):
        registry.register_version("run-x", "/tmp/model", METRICS, lineage("run-x"))
    local_metrics = {**lineage("run-x"), "training_metrics": "/tmp/metrics.json"}
    with pytest.raises(ValueError, match="lineage field 'training_metrics'"):
        registry.register_version("run-x", "s3://b/model.tar.gz", METRICS, local_metrics)
    crowded = {**lineage("run-x"), **{f"extra_{i}": str(i) for i in range(40)}}
    with pytest.raises(ValueError, match="needs 5[0-9] keys, SageMaker allows 50"):
        registry.register_version("run-x", "s3://b/model.tar.gz", METRICS, crowded)
    assert registry.list_versions() == []


def test_approval_updates_the_package_and_keeps_lineage(
    registry: SageMakerModelRegistry, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    register(registry, "run-1")
    approved = registry.set_approval("1", APPROVED, "alice", "better on neutral, see the report")
    [update] = made(calls, "UpdateModelPackage")
    assert update["ModelApprovalStatus"] == APPROVED
    assert update["ApprovalDescription"] == "alice: better on neutral, see the report"
    assert (approved.status, approved.approved_by, approved.approval_comment) == (
        APPROVED, "alice", "better on neutral, see the report"
    )
    assert approved.lineage == lineage("run-1") and approved.metrics == METRICS
    rejected = registry.set_approval("1", REJECTED, "bob", "")
    assert (rejected.status, rejected.approved_by, rejected.approval_comment) == (REJECTED, "bob", "")
    assert made(calls, "UpdateModelPackage")[-1]["CustomerMetadataPropertiesToRemove"] == ["approval.comment.b64.0"]
    with pytest.raises(ValueError, match="approval status must be one of"):
        registry.set_approval("1", "Maybe", "carol", "")
    with pytest.raises(KeyError, match="has no version 9"):
        registry.set_approval("9", APPROVED, "carol", "")


def test_aliases_move_between_versions_and_an_interrupted_move_resolves_to_the_newest(
    registry: SageMakerModelRegistry, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    assert registry.champion() is None
    for key in ("run-1", "run-2", "run-3"):
        register(registry, key)
    registry.set_approval("1", APPROVED, "reviewflow-gate", "first")
    registry.set_alias(CHAMPION, "1")
    registry.set_alias(CHALLENGER, "2")
    assert registry.champion().version == "1" and registry.version_for_alias(CHALLENGER).version == "2"
    assert registry.champion().status == APPROVED and registry.champion().approved_by == "reviewflow-gate"
    updates = len(made(calls, "UpdateModelPackage"))
    registry.set_alias(CHAMPION, "1")
    assert len(made(calls, "UpdateModelPackage")) == updates  # already there: nothing written

    registry.set_alias(CHAMPION, "2")  # promotion
    assert [v.aliases for v in registry.list_versions()] == [(), (CHALLENGER, CHAMPION), ()]
    assert registry.get_version("1").status == APPROVED  # moving an alias leaves the approval alone

    # A move to version 3 that died after writing the new holder: both carry the key, the newest counter wins.
    registry._update_metadata(registry._describe("3"), {"alias.champion": "99"}, ())
    assert registry.champion().version == "3" and registry.get_version("2").aliases == (CHALLENGER,)
    registry.set_alias(CHAMPION, "3")  # the retry finishes the move
    holders = [v for v in ("1", "2", "3") if "alias.champion" in registry._describe(v)["CustomerMetadataProperties"]]
    assert holders == ["3"]
    with pytest.raises(ValueError, match="alias must be one of"):
        registry.set_alias("production", "1")


def test_alias_removal_and_rollout_outcome_are_package_metadata(registry: SageMakerModelRegistry) -> None:
    for key in ("run-1", "run-2"):
        register(registry, key)
    registry.set_alias(CHALLENGER, "2")
    registry._update_metadata(registry._describe("1"), {"alias.challenger": "0"}, ())  # a stale holder of an old move
    registry.remove_alias(CHALLENGER)
    assert registry.version_for_alias(CHALLENGER) is None
    assert all("alias.challenger" not in registry._describe(v)["CustomerMetadataProperties"] for v in ("1", "2"))
    rolled_back = registry.set_rollout_outcome("2", ROLLED_BACK, "guardrail: P(worse) 0.999")
    assert (rolled_back.rollout_outcome, rolled_back.rollout_reason) == (ROLLED_BACK, "guardrail: P(worse) 0.999")
    assert rolled_back.run_key == "run-2"  # the rest of the metadata is kept


def test_default_image_is_the_hugging_face_pytorch_inference_image() -> None:
    uri = huggingface_inference_image_uri(REGION)
    assert uri.startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:")
    assert "transformers5" in uri and "-cpu-" in uri
