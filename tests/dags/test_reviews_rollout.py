"""reviews_rollout end to end on the local backend: a real endpoint, real replay traffic, real feedback.

The models are tiny classifiers that answer one label for every review, so the tests know their
reward rates on the generated reviews (about 80 % positive, 13 % negative, 7 % neutral) and can
check that the bandit promotes the better one and the guardrail rolls back the worse one.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from include.registry.base import (
    CHALLENGER,
    DEFAULT_MODEL_NAME,
    NOT_PROMOTED,
    PENDING,
    PROMOTED,
    REJECTED,
    ROLLED_BACK,
)
from include.registry.mlflow_registry import MlflowModelRegistry
from include.rollout.feedback import parse_cursor
from include.rollout.record import RECORD_FILE
from include.rollout.replay_process import ReplayProcess
from include.serving.control import running_server
from include.serving.feedback import FeedbackStore
from include.serving.state import DEFAULT_ENDPOINT_NAME, EndpointPaths
from reviewflow.runs import run_key_of
from tests.conftest import kill_when
from tests.dags.conftest import DAGS_FOLDER
from tests.dags.helpers import (
    FAST_ROLLOUT,
    alerts_of,
    fail_fast_on_regression,
    lineage_graph,
    reachable,
    register,
    rollout_record,
    task_states,
)
from tests.reliability import ReliabilityRecord


# Between alike models only the budget may end it: the stop rule waits for more rewards than the budget
# allows, and a promotion or a guardrail drop would need every one of the 10,000 draws to agree. In the
# simulator (include/rollout/simulate.py) this setting keeps the champion in 4,999 runs of 5,000; at the
# defaults (P(best) >= 0.95 after 40 rewards) alike models promote the challenger in about one run of five.
# The replay is throttled so the budget lasts at least 20 s: unthrottled, a slow machine's first rounds spent
# all of it before a test could act between rounds (kill the run, see a late challenger join).
UNDECIDABLE = {
    "budget_requests": 800, "min_rewarded_per_arm": 1000, "p_best_threshold": 1.0, "guardrail_probability": 1.0,
    "replay_rate": 40,
}
# reviews_rollout through dag.test() in a process of its own: argv = DAGs folder, logical date, conf (JSON).
RUN_ROLLOUT = (
    "import datetime as dt, json, sys; from airflow.dag_processing.dagbag import DagBag; "
    "at = dt.datetime.fromisoformat(sys.argv[2]); "
    "DagBag(dag_folder=sys.argv[1]).dags['reviews_rollout'].test(logical_date=at, run_after=at, run_conf=json.loads(sys.argv[3]))"
)


def rollout_outputs(data_root: Path, registry: MlflowModelRegistry) -> dict:
    """What a reviews_rollout run left: the record, the endpoint's variants, the feedback store's totals, the registry."""
    paths = EndpointPaths.for_endpoint(data_root, DEFAULT_ENDPOINT_NAME)
    with closing(FeedbackStore(paths.feedback)) as store:
        served = sum(count.predictions for count in store.served_since(0).counts)
        rewarded = sum(v.successes + v.failures for v in store.rewards_since(0).variants)
    summary = json.loads(next((data_root / "reports").glob("*/summary.json")).read_text())["rollout"]
    return {
        "record": rollout_record(data_root).to_json(),
        "endpoint": json.loads(paths.state.read_text()),
        "feedback": (served, rewarded),
        "versions": [(v.version, v.status, v.rollout_outcome) for v in registry.list_versions()],
        "champion": registry.champion().version,
        "summary": {key: value for key, value in summary.items() if key != "plots"},
    }


@pytest.mark.reliability
def test_a_better_challenger_is_promoted_and_serves_all_traffic(
    dag_bag, rollout_root: Path, statsd, reliability: ReliabilityRecord, lineage_log: Path
) -> None:
    registry = register(rollout_root, {"1": "negative", "2": "positive"}, approved={"1", "2"})
    dag = dag_bag.dags["reviews_rollout"]
    fail_fast_on_regression(dag)

    dag_run = dag.test(run_conf={"challenger_version": "2", **FAST_ROLLOUT})

    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    record = rollout_record(rollout_root)
    decision = record.experiment.decision
    assert (decision.action, decision.winner) == ("promote", "v2")
    assert registry.champion().version == "2"
    promoted = registry.get_version("2")
    assert (promoted.rollout_outcome, promoted.rollout_reason) == (PROMOTED, decision.reason)
    served = running_server(EndpointPaths.for_endpoint(rollout_root, DEFAULT_ENDPOINT_NAME))
    assert served is not None  # it keeps serving after the run
    assert json.loads((rollout_root / "endpoint" / DEFAULT_ENDPOINT_NAME / "state.json").read_text())["variants"][0]["model_version"] == "2"

    # Nothing counted twice: the experiment's counts are the store's, from the experiment's start on.
    counted = {arm.name: arm.served for arm in record.experiment.arms}
    rewarded = {arm.name: arm.successes + arm.failures for arm in record.experiment.arms}
    with closing(FeedbackStore(EndpointPaths.for_endpoint(rollout_root, DEFAULT_ENDPOINT_NAME).feedback)) as store:
        stored = {c.variant: 0 for c in store.served_since(0).counts}
        for count in store.served_since(0).counts:
            stored[count.variant] += count.predictions
        stored_rewards = {v.variant: v.successes + v.failures for v in store.rewards_since(0).variants}
    assert all(counted[arm] <= stored[arm] for arm in counted) and sum(counted.values()) >= 80
    assert all(rewarded[arm] <= stored_rewards[arm] for arm in rewarded)

    # The replay client's own tally agrees with the store: every answer and every reward recorded once.
    tally = dag_run.get_task_instance("stop_replay").xcom_pull(task_ids="stop_replay")
    assert tally["answered"] > 0 and tally["errors"] == {}
    assert (sum(stored.values()), sum(stored_rewards.values())) == (tally["answered"], tally["rewards_posted"])
    summary = json.loads(next((rollout_root / "reports").glob("*/summary.json")).read_text())["rollout"]
    assert summary["winner"] == "v2" and summary["conclusion"]["action"] == "promote"
    assert summary["conclusion"]["address"] == served.url  # what make run prints (scripts/show_summary.py)
    assert all(Path(uri).is_file() for uri in summary["plots"].values())
    metrics = statsd.metrics()
    assert metrics["rollout.decision.promote"] == ["1|c"] and metrics["rollout.regret"] == [f"{summary['regret']}|g"]

    # OpenLineage: the run's tasks chain the model versions to the endpoint variants, the record and the summary.
    graph = lineage_graph(lineage_log, rollout_root, run_ids={dag_run.run_id})
    record_file = ("file", str(rollout_root / "rollouts" / run_key_of(dag_run.run_id) / RECORD_FILE))
    summary_file = ("file", str(next((rollout_root / "reports").glob("*/summary.json"))))
    assert {record_file, summary_file, ("endpoint", f"{DEFAULT_ENDPOINT_NAME}/variants/v2")} <= reachable(
        graph, ("mlflow", "reviewflow-sentiment/versions/2")
    )
    assert ("mlflow", "reviewflow-sentiment/versions/2") in reachable(graph, record_file)  # conclude promoted it

    # The same run again (the same run id: every task reruns after the promotion): nothing changes.
    reliability.section, reliability.case, reliability.path = "Reruns", "reviews_rollout run twice", "dag.test(), same run id"
    reliability.tried = "every task again after the promotion: resolve, start, deploy, replay, rounds, conclude, report"
    before = rollout_outputs(rollout_root, registry)
    again = dag.test(logical_date=dag_run.logical_date, run_after=dag_run.run_after,
                     run_conf={"challenger_version": "2", **FAST_ROLLOUT})
    assert again.run_id == dag_run.run_id and set(task_states(again).values()) == {"success"}, task_states(again)
    assert rollout_outputs(rollout_root, registry) == before
    reliability.outcome = (
        f"the same decision (promote v2), record, registry versions and endpoint (variants "
        f"{[v['name'] for v in before['endpoint']['variants']]}, weights generation {before['endpoint']['weights_generation']}); "
        f"{before['feedback'][0]} predictions and {before['feedback'][1]} rewards in the store, none added by the rerun"
    )


def test_a_broken_challenger_is_rolled_back_rejected_and_paged(dag_bag, rollout_root: Path) -> None:
    registry = register(rollout_root, {"1": "positive", "2": "neutral"}, approved={"1", "2"})
    dag = dag_bag.dags["reviews_rollout"]
    fail_fast_on_regression(dag)

    dag_run = dag.test(run_conf={"challenger_version": "2", **FAST_ROLLOUT})

    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    decision = rollout_record(rollout_root).experiment.decision
    assert decision.action == "rollback" and "guardrail" in decision.rule
    assert registry.champion().version == "1"
    rolled_back = registry.get_version("2")
    assert (rolled_back.status, rolled_back.rollout_outcome) == (REJECTED, ROLLED_BACK)
    state = json.loads((rollout_root / "endpoint" / DEFAULT_ENDPOINT_NAME / "state.json").read_text())
    assert [variant["model_version"] for variant in state["variants"]] == ["1"]
    assert any("v2 rolled back" in alert["title"] for alert in alerts_of(rollout_root, "bandit_rounds"))


@pytest.mark.parametrize("status", [PENDING, REJECTED])
def test_a_rejected_or_pending_model_never_reaches_the_endpoint(dag_bag, rollout_root: Path, status: str) -> None:
    registry = register(rollout_root, {"1": "positive", "2": "positive"}, approved={"1"})
    if status == REJECTED:
        registry.set_approval("2", REJECTED, "reviewflow-gate", "macro-F1 below the minimum")
    dag = dag_bag.dags["reviews_rollout"]
    fail_fast_on_regression(dag)

    dag_run = dag.test(run_conf={"challenger_version": "2", **FAST_ROLLOUT})

    states = task_states(dag_run)
    assert states["resolve_models"] == "failed" and dag_run.get_task_instance("resolve_models").try_number == 1
    [alert] = alerts_of(rollout_root, "resolve_models")
    assert f"{DEFAULT_MODEL_NAME} version 2 cannot be rolled out: it is {status}" in alert["message"]
    assert not (rollout_root / "endpoint").exists()


def test_on_aws_the_graph_deploys_a_sagemaker_endpoint_and_sends_no_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from reviewflow.operators.endpoint import SageMakerDeployEndpointOperator

    monkeypatch.setenv("REVIEWFLOW_BACKEND", "aws")
    monkeypatch.setenv("REVIEWFLOW_DATA_ROOT", "s3://reviewflow-test/data")
    dag = DagBag(dag_folder=str(DAGS_FOLDER / "reviews_rollout.py")).dags["reviews_rollout"]

    assert set(dag.task_ids) == {"resolve_models", "start_experiment", "deploy_challenger", "bandit_rounds", "conclude", "report"}
    deploy = dag.get_task("deploy_challenger")
    assert isinstance(deploy, SageMakerDeployEndpointOperator)
    assert dag.params["poll_seconds"] == 60  # SageMaker Data Capture lands in minutes, not seconds
    for task in dag.tasks:
        assert "aws_conn_id" in task.template_fields, task.task_id
        assert "reviewflow_aws_conn_id" in str(task.aws_conn_id), task.task_id


def test_a_challenger_approved_during_the_experiment_joins_it(dag_bag, rollout_root: Path) -> None:
    """v3 holds the challenger alias while v2 (named on the form) is rolled out: v3 joins at the minimum weight."""
    registry = register(rollout_root, {"1": "positive", "2": "neutral", "3": "positive"}, approved={"1", "2", "3"})
    registry.set_alias(CHALLENGER, "3")
    dag = dag_bag.dags["reviews_rollout"]
    fail_fast_on_regression(dag)

    # v1 and v3 answer alike, so only the budget may end it (UNDECIDABLE).
    dag_run = dag.test(run_conf={"challenger_version": "2", **FAST_ROLLOUT, **UNDECIDABLE})

    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    experiment = rollout_record(rollout_root).experiment
    assert [arm.name for arm in experiment.arms] == ["v1", "v2", "v3"]
    assert experiment.arm("v2").status == "dropped" and experiment.arm("v3").served > 0
    assert (experiment.decision.action, experiment.decision.rule) == ("keep_champion", "budget")
    assert registry.get_version("3").rollout_outcome == NOT_PROMOTED and registry.version_for_alias(CHALLENGER) is None
    state = json.loads((rollout_root / "endpoint" / DEFAULT_ENDPOINT_NAME / "state.json").read_text())
    assert [variant["model_version"] for variant in state["variants"]] == ["1"]


def committed_rounds(data_root: Path) -> int:
    """Rounds in the rollout record committed so far (0 before there is one)."""
    records = list((data_root / "rollouts").glob("*/experiment.json"))
    return len(rollout_record(data_root).experiment.rounds) if records else 0


@pytest.mark.reliability
def test_a_kill_during_the_rounds_resumes_from_the_last_committed_round(
    dag_bag, rollout_root: Path, reliability: ReliabilityRecord
) -> None:
    reliability.section, reliability.case = "Kills", "rollout: kill -9 during the bandit rounds"
    reliability.path = "reviews_rollout through dag.test() in a subprocess, then the run again"
    reliability.tried = "SIGKILL the process running the DAG once 3 rounds are committed; then the same run (same run id)"
    registry = register(rollout_root, {"1": "positive", "2": "positive"}, approved={"1", "2"})
    conf = {"challenger_version": "2", **FAST_ROLLOUT, **UNDECIDABLE}
    at = dt.datetime(2026, 11, 3, 6, 0, tzinfo=dt.UTC)
    process = subprocess.Popen([sys.executable, "-c", RUN_ROLLOUT, str(DAGS_FOLDER), at.isoformat(), json.dumps(conf)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert kill_when(process, lambda: committed_rounds(rollout_root) >= 3) == -signal.SIGKILL  # mid-experiment
        killed = rollout_record(rollout_root).experiment  # a whole record: it is replaced whole, never written in place
        assert killed.decision is None and len(killed.rounds) >= 3

        dag = dag_bag.dags["reviews_rollout"]
        fail_fast_on_regression(dag)
        dag_run = dag.test(logical_date=at, run_after=at, run_conf=conf)
    finally:
        for folder in (rollout_root / "rollouts").glob("*"):  # the generator outlives a killed DAG run
            ReplayProcess(folder).stop()

    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    experiment = rollout_record(rollout_root).experiment
    assert experiment.decision.action == "keep_champion" and registry.champion().version == "1"
    assert experiment.rounds[: len(killed.rounds)] == killed.rounds  # resumed from the last committed round
    assert all(later.since == earlier.until for earlier, later in zip(experiment.rounds, experiment.rounds[1:]))
    # Nothing counted twice or left out: the arms' counts are the store's, between the first and the last cursor.
    (rewards_from, served_from), (rewards_to, served_to) = (parse_cursor(experiment.rounds[0].since),
                                                            parse_cursor(experiment.rounds[-1].until))
    with closing(FeedbackStore(EndpointPaths.for_endpoint(rollout_root, DEFAULT_ENDPOINT_NAME).feedback)) as store:
        served = {c.variant: 0 for c in store.served_since(0).counts}
        for sign, cursor in ((1, served_from), (-1, served_to)):
            for count in store.served_since(cursor).counts:
                served[count.variant] += sign * count.predictions
        rewarded = {name: 0 for name in served}
        for sign, cursor in ((1, rewards_from), (-1, rewards_to)):
            for variant in store.rewards_since(cursor).variants:
                rewarded[variant.variant] += sign * (variant.successes + variant.failures)
    assert {arm.name: arm.served for arm in experiment.arms} == {arm.name: served[arm.name] for arm in experiment.arms}
    assert {arm.name: arm.rewarded for arm in experiment.arms} == {arm.name: rewarded[arm.name] for arm in experiment.arms}
    reliability.outcome = (
        f"killed with {len(killed.rounds)} rounds committed; the rerun kept them and went on to round "
        f"{len(experiment.rounds)} ({experiment.decision.action}, {experiment.decision.rule}); the arms' "
        f"{sum(arm.served for arm in experiment.arms)} predictions and {sum(arm.rewarded for arm in experiment.arms)} "
        "rewards are exactly the store's between the first and the last cursor: none counted twice"
    )
