"""The rollout's operators on the aws backend against moto: the experiment's weights pushed with
UpdateEndpointWeightsAndCapacities, a promotion and a rollback in the SageMaker registry and endpoint,
a page on a sample-ratio mismatch, and the rounds waiting deferred for traffic.

The rounds' feedback is given as a delta (the S3 feedback reader is tested in test_endpoint_aws.py).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk.exceptions import TaskDeferred

from include.registry.base import APPROVED, CHAMPION, NOT_PROMOTED, PROMOTED, REJECTED, ROLLED_BACK
from include.registry.sagemaker_registry import SageMakerModelRegistry
from include.rollout import Feedback, RoundRecord, step, summary
from reviewflow.operators.rollout import BanditRoundsOperator, ConcludeRolloutOperator, StartExperimentOperator
from tests.conftest import AWS_CONN_ID, AwsCalls, made, task_context
from tests.plugins.conftest import ENDPOINT, REGION, deploy

CONTEXT = task_context("reviews_rollout", "bandit_rounds", "manual__2026-11-29")


def start(registered: AwsCalls) -> tuple[SageMakerModelRegistry, BanditRoundsOperator]:
    """v1 champion and v2 approved in the registry, the experiment started and deployed."""
    registry = SageMakerModelRegistry(boto3.client("sagemaker", region_name=REGION))
    for version in ("1", "2"):
        registry.set_approval(version, APPROVED, "tests", "")
    registry.set_alias(CHAMPION, "1")
    models = {
        "champion": {"version": "1", "model_uri": registry.get_version("1").model_uri, "run_key": "run-1", "variant": "v1"},
        "challengers": [{"version": "2", "model_uri": registry.get_version("2").model_uri, "run_key": "run-2", "variant": "v2"}],
    }
    started = StartExperimentOperator(
        task_id="start_experiment", models=models, policy={"min_rewarded_per_arm": 50}, endpoint_name=ENDPOINT,
        aws_conn_id=AWS_CONN_ID,
    ).execute(CONTEXT)
    deploy(started["variants"])
    return registry, BanditRoundsOperator(task_id="bandit_rounds", endpoint_name=ENDPOINT, aws_conn_id=AWS_CONN_ID)


def play(rounds: BanditRoundsOperator, served: int | dict[str, int], successes: dict[str, int]) -> RoundRecord:
    """Push the experiment's weights, then one round of ``served`` rewarded requests (per variant, or the same for
    each); commit and act."""
    served = served if isinstance(served, dict) else {"v1": served, "v2": served}
    hook = rounds.endpoint()
    record = rounds.push_weights(CONTEXT, rounds.require_record(CONTEXT), hook)
    experiment = record.experiment
    feedback = Feedback(
        since=experiment.cursor, until=f"rewards={len(experiment.rounds) + 1};served={len(experiment.rounds) + 1}",
        served=served, successes=successes, failures={arm: served[arm] - n for arm, n in successes.items()},
    )
    experiment, played = step(experiment, feedback, dt.datetime.now(dt.UTC))
    record = record.with_experiment(experiment)
    rounds.commit(CONTEXT, record)
    rounds.act_on_round(CONTEXT, record, played)
    return played


def alert_titles(tmp_path: Path) -> list[str]:
    log = tmp_path / "alerts.jsonl"
    return [json.loads(line)["title"] for line in log.read_text().splitlines()] if log.exists() else []


def endpoint_variants() -> list[str]:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    config = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    return [v["VariantName"] for v in sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]]


def test_a_better_challenger_is_promoted_in_the_registry_and_on_the_endpoint(registered: AwsCalls) -> None:
    registry, rounds = start(registered)

    play(rounds, 40, {"v1": 24, "v2": 25})  # undecided: new weights
    weights = dict(rounds.require_record(CONTEXT).experiment.weights)
    play(rounds, 500, {"v1": 300, "v2": 450})  # the new weights are pushed first
    conclusion = ConcludeRolloutOperator(task_id="conclude", endpoint_name=ENDPOINT, aws_conn_id=AWS_CONN_ID).execute(CONTEXT)

    assert (conclusion["action"], conclusion["winner"], conclusion["winner_version"]) == ("promote", "v2", "2")
    pushed, final = made(registered, "UpdateEndpointWeightsAndCapacities")  # round 2's weights, then all to v2
    assert {w["VariantName"]: w["DesiredWeight"] for w in pushed["DesiredWeightsAndCapacities"]} == weights
    assert {w["VariantName"]: w["DesiredWeight"] for w in final["DesiredWeightsAndCapacities"]} == {"v1": 0.0, "v2": 1.0}
    assert registry.champion().version == "2" and registry.get_version("2").rollout_outcome == PROMOTED
    assert endpoint_variants() == ["v2"]
    record = json.loads(boto3.client("s3", region_name=REGION).get_object(
        Bucket="reviewflow-test", Key="reviewflow/rollouts/manual__2026-11-29/experiment.json")["Body"].read())
    assert record["conclusion"]["winner"] == "v2"


def test_a_worse_challenger_is_rejected_rolled_back_and_paged(registered: AwsCalls, tmp_path: Path) -> None:
    registry, rounds = start(registered)

    play(rounds, 500, {"v1": 450, "v2": 100})
    conclusion = ConcludeRolloutOperator(task_id="conclude", endpoint_name=ENDPOINT, aws_conn_id=AWS_CONN_ID).execute(CONTEXT)

    assert (conclusion["action"], conclusion["winner"]) == ("rollback", "v1")
    rolled_back = registry.get_version("2")
    assert (rolled_back.status, rolled_back.rollout_outcome) == (REJECTED, ROLLED_BACK)
    assert "P(v2 < v1 - 0.02)" in rolled_back.approval_comment  # the guardrail's reason
    assert registry.champion().version == "1" and registry.get_version("1").rollout_outcome != NOT_PROMOTED
    assert endpoint_variants() == ["v1"]
    alerts = alert_titles(tmp_path)
    assert any("v2 rolled back" in title for title in alerts) and any("rollout rolled back" in title for title in alerts)


def test_a_round_whose_split_ignores_the_weights_pages(registered: AwsCalls, tmp_path: Path) -> None:
    _, rounds = start(registered)

    matching = play(rounds, {"v1": 900, "v2": 100}, {"v1": 810, "v2": 90})  # as the 90/10 canary weights say
    assert matching.srm.checked and not matching.srm.mismatch and alert_titles(tmp_path) == []
    ignored = play(rounds, {"v1": 1000, "v2": 0}, {"v1": 900, "v2": 0})  # v2 kept at least the 0.1 floor, served nothing
    assert ignored.srm.mismatch and ignored.weights["v2"] >= 0.1

    assert alert_titles(tmp_path) == ["[reviewflow] rollout round 1: traffic does not follow the weights"]
    assert summary(rounds.require_record(CONTEXT).experiment)["srm_mismatch_rounds"] == [1]


def test_the_rounds_wait_deferred_for_a_round_of_predictions(registered: AwsCalls) -> None:
    _, rounds = start(registered)

    with pytest.raises(TaskDeferred) as deferred:  # no prediction served yet: no worker slot held while waiting
        rounds.execute(CONTEXT)

    assert isinstance(deferred.value.trigger, DateTimeTrigger) and deferred.value.method_name == "run_rounds"
    record = rounds.require_record(CONTEXT)
    assert record.experiment.rounds == () and record.weights_generation  # the canary weights pushed, no round played


@pytest.mark.parametrize("operator", [StartExperimentOperator, BanditRoundsOperator, ConcludeRolloutOperator])
def test_every_rollout_operator_takes_a_templated_connection(operator: type) -> None:
    assert "aws_conn_id" in operator.template_fields
