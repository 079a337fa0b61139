"""Endpoint hook and operators on the local backend: a detached server, idempotent deploys and weights.

The tests share one endpoint and run in order (deploy, weights, variants, stop/start, promote).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.serving.control import running_server
from reviewflow.hooks.endpoint import LocalEndpointHook
from reviewflow.operators.endpoint import DeployEndpointOperator, LocalDeployEndpointOperator, SetEndpointWeightsOperator
from tests.conftest import AWS_CONN_ID
from tests.include.serving.conftest import data_root_with_registry

ENDPOINT = "rollout-test"


@pytest.fixture(scope="module")
def hook(served_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpointHook]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REVIEWFLOW_BACKEND", "local")
        env.setenv("REVIEWFLOW_DATA_ROOT", str(data_root_with_registry(served_registry, tmp_path_factory.mktemp("local"))))
        endpoint = LocalEndpointHook(ENDPOINT, port=0, server_args=["--threads", "1"])
        yield endpoint
        endpoint.stop()


def deploy(variants: list[dict]) -> dict:
    operator = DeployEndpointOperator(task_id="deploy", variants=variants, endpoint_name=ENDPOINT, port=0,
                                      aws_conn_id=AWS_CONN_ID)  # the local operator takes none
    assert isinstance(operator, LocalDeployEndpointOperator)
    return operator.execute({})


def test_deploy_reports_model_versions_to_variants_as_lineage(hook: LocalEndpointHook) -> None:
    operator = DeployEndpointOperator(task_id="deploy", variants=[{"model_version": "1", "weight": 0.9},
                                      {"model_version": "2", "weight": 0.1}], endpoint_name=ENDPOINT, port=0)
    operator.execute({})
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("mlflow", "reviewflow-sentiment/versions/1"), ("mlflow", "reviewflow-sentiment/versions/2"),
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        ("endpoint", f"{ENDPOINT}/variants/v1"), ("endpoint", f"{ENDPOINT}/variants/v2"),
    ]


def set_weights(weights: dict) -> dict:
    return SetEndpointWeightsOperator(
        task_id="weights", weights=weights, endpoint_name=ENDPOINT, aws_conn_id=AWS_CONN_ID
    ).execute({})


def test_deploy_starts_the_server_once_and_a_retry_changes_nothing(hook: LocalEndpointHook) -> None:
    first = deploy([{"model_version": "1", "weight": 0.9}, {"model_version": "2", "weight": 0.1}])
    started = running_server(hook.paths)
    assert started is not None and first["address"] == started.url
    assert json.loads(json.dumps(first)) == first  # a small, JSON-ready XCom
    assert (first["weights"], first["weights_generation"], first["status"]) == ({"v1": 0.9, "v2": 0.1}, 1, "InService")
    assert deploy([{"model_version": "1", "weight": 0.9}, {"model_version": "2", "weight": 0.1}])["weights_generation"] == 1
    assert running_server(hook.paths).pid == started.pid


def test_weights_operator_applies_once_and_refuses_bad_weights(hook: LocalEndpointHook) -> None:
    changed = set_weights({"v2": 0.25})
    assert (changed["weights"], changed["weights_generation"]) == ({"v1": 0.9, "v2": 0.25}, 2)
    assert set_weights({"v2": 0.25})["weights_generation"] == 2  # a retry
    with pytest.raises(AirflowFailException, match=r"unknown variant\(s\) \['v7'\]"):
        set_weights({"v7": 1.0})
    with pytest.raises(AirflowFailException, match="weights.v1: must be a finite number"):
        set_weights({"v1": -1})
    assert {"weights", "aws_conn_id", "region_name"} <= set(SetEndpointWeightsOperator.template_fields)


def test_hook_adds_and_removes_variants_idempotently(hook: LocalEndpointHook) -> None:
    added = hook.add_variant("2", 0.0, int8=True)
    assert list(added.weights) == ["v1", "v2", "v2-int8"]
    assert hook.add_variant("2", 0.0, int8=True).weights_generation == added.weights_generation
    removed = hook.remove_variant("v2-int8")
    assert hook.remove_variant("v2-int8") == removed and list(removed.weights) == ["v1", "v2"]
    with pytest.raises(AirflowFailException, match="has no version 42"):
        deploy([{"model_version": "1", "weight": 1.0}, {"model_version": "42", "weight": 0.0}])
    with pytest.raises(AirflowFailException, match=r"variants\[0\].weight: must be a finite number"):
        deploy([{"model_version": "1", "weight": "a lot"}])


def test_a_stopped_endpoint_describes_its_variants_and_restarts_with_them(hook: LocalEndpointHook) -> None:
    before = hook.describe()
    assert hook.stop() and not hook.stop()
    stopped = hook.describe()
    assert (stopped.status, stopped.weights, stopped.weights_generation) == ("Stopped", before.weights, before.weights_generation)
    restarted = hook.set_weights(before.weights)  # starts the server again with its saved variants; nothing changes
    assert (restarted.status, restarted.weights_generation) == ("InService", before.weights_generation)


def test_promotion_is_a_deploy_of_the_winner_alone(hook: LocalEndpointHook) -> None:
    generation = hook.describe().weights_generation
    promoted = deploy([{"model_version": "2", "weight": 1.0}])
    assert (promoted["weights"], promoted["weights_generation"]) == ({"v2": 1.0}, generation + 2)  # weights, then v1 removed
    with hook.feedback_reader() as reader:
        assert reader.served_since(0).counts == ()
