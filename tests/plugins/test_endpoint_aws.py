"""The endpoint on the aws backend against moto: models, configs and the endpoint created once, variants
added and removed by new configs, weights through UpdateEndpointWeightsAndCapacities, and S3 feedback.

moto 5.2 has no UpdateEndpoint; :func:`moto_update_endpoint` adds it the way SageMaker ends one (the
endpoint switches to the new config's variants).  Everything else is moto's own SageMaker, S3 and Athena.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from typing import Any

import boto3
import pytest
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import TaskDeferred

from include.config import load_settings
from include.registry.base import DEFAULT_MODEL_NAME
from include.serving.feedback import RewardOutcome
from include.serving.variants import VariantSpec
from include.serving.sagemaker import WeightsGeneration, WeightsHistory, capture_uri, code_digest, weights_history_uri
from reviewflow.backends import endpoint_hook_for
from reviewflow.hooks.endpoint import SageMakerEndpointHook
from reviewflow.operators.endpoint import SetEndpointWeightsOperator
from tests.conftest import AWS_CONN_ID, AwsCalls, made
from tests.plugins.conftest import BUCKET, ENDPOINT, REGION, deploy

ROOT = f"s3://{BUCKET}/reviewflow"
CREATES = ("CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint")


def hook() -> SageMakerEndpointHook:
    found = endpoint_hook_for(load_settings(), ENDPOINT, DEFAULT_MODEL_NAME, AWS_CONN_ID)
    assert isinstance(found, SageMakerEndpointHook)
    return found


def counts(calls: AwsCalls) -> dict[str, int]:
    return {operation: len(made(calls, operation)) for operation in CREATES}


def test_deploy_creates_models_config_and_endpoint_once(registered: AwsCalls) -> None:
    result = deploy([{"model_version": "1", "weight": 0.9}, {"model_version": "2", "weight": 0.1}])
    assert (result["weights"], result["weights_generation"], result["status"]) == ({"v1": 0.9, "v2": 0.1}, 1, "InService")
    assert json.loads(json.dumps(result)) == result
    assert counts(registered) == {"CreateModel": 2, "CreateEndpointConfig": 1, "CreateEndpoint": 1, "UpdateEndpoint": 0}

    [model, _] = made(registered, "CreateModel")
    assert model["ModelName"] == f"reviewflow-sentiment-v1-{code_digest()[:8]}"
    container = model["PrimaryContainer"]
    assert "huggingface-pytorch-inference" in container["Image"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["ModelDataUrl"] == f"{ROOT}/endpoint/{ENDPOINT}/models/{model['ModelName']}/model.tar.gz"
    bucket, key = container["ModelDataUrl"].removeprefix("s3://").split("/", 1)
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        names = set(tar.getnames())
        assert json.loads(tar.extractfile("serving.json").read()) == {"variant": "v1", "model_version": "1", "int8": False}
    assert {"code/inference.py", "code/include/features/text.py", "model.safetensors", "config.json"} <= names

    [config] = made(registered, "CreateEndpointConfig")
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in config["ProductionVariants"]] == [("v1", 0.9), ("v2", 0.1)]
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] and capture["InitialSamplingPercentage"] == 100
    assert capture["DestinationS3Uri"] == capture_uri(ROOT, ENDPOINT)
    assert capture["CaptureContentTypeHeader"] == {"JsonContentTypes": ["application/json"]}
    athena = [q["QueryString"] for q in made(registered, "StartQueryExecution")]
    assert len(athena) == 3 and "CREATE EXTERNAL TABLE IF NOT EXISTS reviews_db.endpoint_reviews_live_rewards" in athena[0]
    assert f"LOCATION '{ROOT}/endpoint/{ENDPOINT}/capture/{ENDPOINT}/'" in athena[1]

    assert deploy([{"model_version": "1", "weight": 0.9}, {"model_version": "2", "weight": 0.1}]) == result  # a retry
    assert counts(registered) == {"CreateModel": 2, "CreateEndpointConfig": 1, "CreateEndpoint": 1, "UpdateEndpoint": 0}


def test_variants_join_and_leave_through_new_configs(registered: AwsCalls) -> None:
    endpoint = hook()
    endpoint.deploy([VariantSpec("1", 1.0)])
    added = endpoint.add_variant("2", 0.05, int8=True)
    assert (added.weights, added.weights_generation) == ({"v1": 1.0, "v2-int8": 0.05}, 2)
    assert endpoint.add_variant("2", 0.05, int8=True) == added
    [_, update] = made(registered, "CreateEndpointConfig")
    assert made(registered, "UpdateEndpoint") == [{"EndpointName": ENDPOINT, "EndpointConfigName": update["EndpointConfigName"]}]
    removed = endpoint.remove_variant("v1")
    assert (removed.weights, removed.weights_generation) == ({"v2-int8": 0.05}, 3)
    assert endpoint.remove_variant("v1") == removed
    assert counts(registered) == {"CreateModel": 2, "CreateEndpointConfig": 3, "CreateEndpoint": 1, "UpdateEndpoint": 2}
    with pytest.raises(ValueError, match="variants: need at least one"):
        endpoint.remove_variant("v2-int8")


def test_weights_are_set_once_and_the_generation_recorded(registered: AwsCalls) -> None:
    deploy([{"model_version": "1", "weight": 0.5}, {"model_version": "2", "weight": 0.5}])
    operator = SetEndpointWeightsOperator(
        task_id="weights", weights={"v2": 0.8}, endpoint_name=ENDPOINT, aws_conn_id=AWS_CONN_ID
    )
    result = operator.execute({})
    assert (result["weights"], result["weights_generation"]) == ({"v1": 0.5, "v2": 0.8}, 2)
    assert made(registered, "UpdateEndpointWeightsAndCapacities") == [{
        "EndpointName": ENDPOINT,
        "DesiredWeightsAndCapacities": [{"VariantName": "v1", "DesiredWeight": 0.5}, {"VariantName": "v2", "DesiredWeight": 0.8}],
    }]
    assert operator.execute({})["weights_generation"] == 2  # a retry: no second call
    assert len(made(registered, "UpdateEndpointWeightsAndCapacities")) == 1
    history = WeightsHistory.from_json(boto3.client("s3", region_name=REGION).get_object(
        Bucket=BUCKET, Key=weights_history_uri(ROOT, ENDPOINT).split(f"{BUCKET}/", 1)[1])["Body"].read())
    assert [g.weights for g in history.generations] == [{"v1": 0.5, "v2": 0.5}, {"v1": 0.5, "v2": 0.8}]

    deferring = SetEndpointWeightsOperator(
        task_id="weights", weights={"v1": 0.1}, endpoint_name=ENDPOINT, deferrable=True, aws_conn_id=AWS_CONN_ID
    )
    with pytest.raises(TaskDeferred) as deferred:
        deferring.execute({})
    assert isinstance(deferred.value.trigger, SageMakerTrigger) and deferred.value.method_name == "execute_complete"
    done = deferring.execute_complete({}, {"status": "success", "job_name": ENDPOINT})
    assert (done["weights"], done["weights_generation"]) == ({"v1": 0.1, "v2": 0.8}, 3)


def test_rewards_in_s3_are_idempotent_and_read_after_a_cursor(registered: AwsCalls) -> None:
    endpoint = hook()
    writer = endpoint.reward_writer()
    assert writer.record("id-1", 1, "v1", "1") is RewardOutcome.RECORDED
    assert writer.record("id-1", 1, "v1", "1") is RewardOutcome.DUPLICATE
    assert writer.record("id-1", 0, "v1", "1") is RewardOutcome.CONFLICT
    assert writer.record("id-2", 0, "v2", "2") is RewardOutcome.RECORDED
    with pytest.raises(ValueError, match="inference_id"):
        writer.record("../escape", 1, "v1", "1")
    reader = endpoint.feedback_reader()
    reader.lag_s = 0
    first = reader.rewards_since(0)
    assert [(v.variant, v.successes, v.failures) for v in first.variants] == [("v1", 1, 0), ("v2", 0, 1)]
    assert reader.rewards_since(first.cursor).variants == ()
    time.sleep(1.1)  # S3's LastModified has whole seconds
    writer.record("id-3", 1, "v2", "2")
    later = reader.rewards_since(first.cursor)
    assert [(v.variant, v.successes, v.failures) for v in later.variants] == [("v2", 1, 0)] and later.cursor > first.cursor


def capture_line(moment: str, items: list[dict[str, Any]]) -> str:
    output = json.dumps({"predictions": items})
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": "{}", "encoding": "JSON"},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": output, "encoding": "JSON"},
        },
        "eventMetadata": {"eventId": "e", "inferenceTime": moment},
        "eventVersion": "0",
    })


def test_served_counts_come_from_data_capture_per_weights_generation(registered: AwsCalls) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    history = WeightsHistory((WeightsGeneration(1, {"v1": 1.0, "v2": 0.0}, "2026-01-01T00:00:00+00:00"),
                              WeightsGeneration(2, {"v1": 0.5, "v2": 0.5}, "2026-01-01T01:00:00+00:00")))
    s3.put_object(Bucket=BUCKET, Key=weights_history_uri(ROOT, ENDPOINT).split(f"{BUCKET}/", 1)[1], Body=history.to_json())
    prefix = f"reviewflow/endpoint/{ENDPOINT}/capture/{ENDPOINT}"
    item = {"inference_id": "x", "label": "positive", "model_version": "1", "variant": "v1", "probabilities": {}}
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/v1/2026/01/01/00/00-10-000-a.jsonl", Body="\n".join([
        capture_line("2026-01-01T00:30:00Z", [item]), capture_line("2026-01-01T01:30:00Z", [item, item])]).encode())
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/v2/2026/01/01/01/00-10-000-b.jsonl",
                  Body=capture_line("2026-01-01T01:45:00Z", [dict(item, model_version="2", variant="v2")]).encode())
    reader = hook().feedback_reader()
    reader.lag_s = 0
    served = reader.served_since(0)
    assert [(c.weights_generation, c.variant, c.model_version, c.requests, c.predictions) for c in served.counts] == [
        (1, "v1", "1", 1, 1), (2, "v1", "1", 1, 2), (2, "v2", "2", 1, 1)]
    assert reader.served_since(served.cursor).counts == ()
