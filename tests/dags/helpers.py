"""Helpers the DAG tests share: task states, run summaries, cheap retries, the alert log, a tiny training
budget, rollout set-ups."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from include.registry.base import APPROVED, CHAMPION
from include.registry.mlflow_registry import MlflowModelRegistry
from include.rollout.record import RolloutRecord
from include.training.sample_features import write_tiny_classifier
from reviewflow.runs import run_key_of

# A few optimizer steps: enough to exercise every task, not to learn; the gate minimum is lifted accordingly.
TINY_TRAINING = {"epochs": 1, "max_train_samples": 96, "max_seq_length": 32, "min_macro_f1": 0.0}
# Small rounds and a low minimum so a decision takes a few hundred requests; replay unthrottled.
FAST_ROLLOUT = {
    "round_size": 40, "min_rewarded_per_arm": 40, "poll_seconds": 0.3, "replay_rate": 0, "replay_concurrency": 4,
    "replay_requests": 4000, "budget_requests": 4000,
}


def task_states(dag_run) -> dict[str, str]:
    """Task id → state of every task instance of ``dag_run``."""
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def run_summary(data_root: Path, dag_run: Any) -> dict[str, Any]:
    """The run summary (``reports/<run key>/summary.json``) of ``dag_run``."""
    return json.loads((data_root / "reports" / run_key_of(dag_run.run_id) / "summary.json").read_text())


def fail_fast_on_regression(dag) -> None:
    """Keep the tasks' retries but make a retry cheap, so a regression fails the test instead of stalling it."""
    for task in dag.tasks:
        task.retry_delay = dt.timedelta(seconds=1)


def alerts_of(data_root: Path, task_id: str) -> list[dict]:
    """The pages of ``task_id`` in the alert log under ``data_root``."""
    alerts = [json.loads(line) for line in (data_root / "alerts.jsonl").read_text().splitlines()]
    return [alert for alert in alerts if alert.get("task_id") == task_id]


def register(data_root: Path, answers: dict[str, str], approved: set[str]) -> MlflowModelRegistry:
    """Version ``n`` answers ``answers[n]`` to every review; version 1 is champion."""
    registry = MlflowModelRegistry.for_data_root(data_root)
    for version, label in answers.items():
        folder = write_tiny_classifier(data_root / "models" / f"train-{version}" / "model", int(version), answers=label)
        assert registry.register_version(f"train-{version}", str(folder), {"test_macro_f1": 0.5}, {}).version == version
        if version in approved:
            registry.set_approval(version, APPROVED, "tests", "")
    registry.set_alias(CHAMPION, "1")
    return registry


def rollout_record(data_root: Path) -> RolloutRecord:
    """The one rollout record under ``data_root``."""
    [path] = (data_root / "rollouts").glob("*/experiment.json")
    return RolloutRecord.from_json(path.read_bytes())


def run_id_of_event(event: dict[str, Any]) -> str | None:
    """The Airflow run id an OpenLineage task event belongs to (the provider's ``airflow`` run facet)."""
    return ((event.get("run", {}).get("facets", {}).get("airflow") or {}).get("dagRun") or {}).get("run_id")


def lineage_graph(events_file: Path, root: Path, run_ids: set[str] | None = None) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Dataset → datasets derived from it, from the COMPLETE events of tasks that touched ``root``
    (or, with ``run_ids``, of those runs' tasks)."""
    graph: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for line in events_file.read_text().splitlines():
        event = json.loads(line)
        if event.get("eventType") != "COMPLETE" or (run_ids is not None and run_id_of_event(event) not in run_ids):
            continue
        outputs = [(d["namespace"], d["name"]) for d in event.get("outputs", [])]
        for source in event.get("inputs", []):
            graph.setdefault((source["namespace"], source["name"]), set()).update(outputs)
    if run_ids is not None:
        return graph
    return {node: targets for node, targets in graph.items() if str(root) in node[1] or any(str(root) in t[1] for t in targets)}


def reachable(graph: dict[tuple[str, str], set[tuple[str, str]]], start: tuple[str, str]) -> set[tuple[str, str]]:
    """Every dataset derived, directly or not, from ``start``."""
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), set()) - seen:
            seen.add(target)
            todo.append(target)
    return seen
