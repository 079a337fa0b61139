"""reviews_ingest, then reviews_train end to end through dag.test() on the local backend:
features → training → evaluation → registry → automatic gate → (human) approval."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from include.registry.mlflow_registry import MlflowModelRegistry
from include.sample_data import SampleSpec, write_sample
from reviewflow.runs import run_key_of
from tests.conftest import files_under, parquet_digest
from tests.dags.helpers import TINY_TRAINING, run_summary, task_states
from tests.reliability import ReliabilityRecord


class Reviewer:
    """The user answering in the Airflow UI (the API route asks only for an id and a name)."""

    def get_id(self) -> str:
        return "alice"

    def get_name(self) -> str:
        return "alice"


def answer_when_asked(dag_id: str, choice: str, comment: str, timeout: float = 300) -> threading.Thread:
    """Answer the ``human_approval`` request through the REST route's own handler once it waits for input."""
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    def run() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with create_session() as session:
                waiting = (
                    session.query(TaskInstance)
                    .filter_by(dag_id=dag_id, task_id="human_approval", state="awaiting_input")
                    .one_or_none()
                )
                if waiting is not None:
                    update_hitl_detail(
                        dag_id=dag_id,
                        dag_run_id=waiting.run_id,
                        task_id="human_approval",
                        update_hitl_detail_payload=UpdateHITLDetailPayload(
                            chosen_options=[choice], params_input={"comment": comment}
                        ),
                        user=Reviewer(),
                        session=session,
                    )
                    return
            time.sleep(0.5)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def approved_model_events(run_id: str) -> list[dict]:
    """The extras of the approved-model asset events a reviews_train run emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "reviewflow_approved_model", AssetEvent.source_run_id == run_id)
            .all()
        )
        return [dict(event.extra) for event in events]


def train_outputs(data_root: Path, dag_run, registry: MlflowModelRegistry) -> dict:
    """What a reviews_train run left: its features' Parquet contents, model files, registry versions."""
    key = run_key_of(dag_run.run_id)
    features, model = data_root / "features" / key, data_root / "models" / key
    return {
        "splits": {split: parquet_digest(features / split) for split in ("train", "validation", "test", "replay")},
        # A row rewritten carries the time it was written (include/features/store.py); all else must be the same.
        "feature_table": parquet_digest(data_root / "feature_store" / "reviews", without=("write_time",)),
        "manifest": json.loads((features / "manifest.json").read_text()),
        "model": files_under(model),
        "trained_at": (model / "model" / "model.safetensors").stat().st_mtime_ns,
        "versions": [(v.version, v.run_key, v.status) for v in registry.list_versions()],
        "champion": registry.champion().version,
    }


@pytest.mark.reliability
def test_train_register_and_approve_auto_manual_and_gate(
    dag_bag, data_root: Path, tmp_path: Path, statsd, reliability: ReliabilityRecord
) -> None:
    source = tmp_path / "reviews.tsv.gz"
    write_sample(source, SampleSpec(rows=2_500, seed=21, bad_rows=10))
    assert dag_bag.dags["reviews_ingest"].test(run_conf={"source_uri": str(source)}).state == "success"
    published = json.loads((data_root / "curated" / "reviews" / "_latest.json").read_text())
    train = dag_bag.dags["reviews_train"]

    # 1. First model, automatic approval: it becomes the champion directly.
    first = train.test(run_conf=TINY_TRAINING)
    assert first.state == "success", task_states(first)
    assert task_states(first)["human_approval"] == "skipped"
    summary = run_summary(data_root, first)
    assert Path(summary["features"]["manifest_uri"]).exists()
    assert (Path(summary["training"]["model_uri"]) / "model.safetensors").exists()
    assert summary["evaluation"]["champion"] is None and 0.0 <= summary["evaluation"]["challenger_macro_f1"] <= 1.0
    assert statsd.metrics()["model.test_macro_f1"] == [f"{summary['evaluation']['challenger_macro_f1']}|g"]
    registry = MlflowModelRegistry.for_data_root(data_root)
    champion = registry.champion()
    assert champion is not None and champion.status == "Approved" and champion.approved_by == "reviewflow-gate"
    assert champion.lineage["source_snapshot"] == published["snapshot"]
    assert champion.lineage["airflow_run_id"] == first.run_id
    assert approved_model_events(first.run_id) == []  # nothing to roll out against yet

    # The same run again (the same run id: every task reruns over what it committed): the same outputs.
    reliability.section, reliability.case, reliability.path = "Reruns", "reviews_train run twice", "dag.test(), same run id"
    reliability.tried = "every task again: features, train, evaluate, register, the gate, record_approval"
    before = train_outputs(data_root, first, registry)
    again = train.test(logical_date=first.logical_date, run_after=first.run_after, run_conf=TINY_TRAINING)
    assert again.run_id == first.run_id and again.state == "success", task_states(again)
    after = train_outputs(data_root, again, registry)
    assert after["trained_at"] == before["trained_at"], "train.py ran a second training job"
    assert after == before and before["versions"] == [(champion.version, champion.run_key, "Approved")]
    reliability.outcome = (
        f"the same features (rows {({split: rows for split, (rows, _) in before['splits'].items()})}, Parquet contents "
        f"checksummed) and feature table ({before['feature_table'][0]} rows); no second training job (the committed "
        f"model reused, {len(before['model'])} files byte for byte); one registry version, Approved, champion"
    )

    # 2. Second model (another learning rate: the same one would be the first model, reused from the step
    # cache and not registered again), a person approves it in the UI: it becomes the challenger for the rollout.
    responder = answer_when_asked("reviews_train", "Approve", "better on negation")
    second = train.test(run_conf=TINY_TRAINING | {"approval_mode": "manual", "max_f1_drop": 1.0, "learning_rate": 2e-4})
    responder.join(timeout=5)
    assert second.state == "success", task_states(second)
    assert task_states(second)["human_approval"] == "success"
    challenger = registry.version_for_alias("challenger")
    assert challenger is not None and challenger.run_key != champion.run_key
    assert (challenger.status, challenger.approved_by, challenger.approval_comment) == ("Approved", "alice", "better on negation")
    assert run_summary(data_root, second)["evaluation"]["champion"] is not None
    [event] = approved_model_events(second.run_id)
    assert event["version"] == challenger.version and event["champion_version"] == champion.version

    # 3. Third model fails the automatic gate: Rejected with the reason, and it never reaches the rollout.
    third = train.test(run_conf=TINY_TRAINING | {"min_macro_f1": 1.0, "learning_rate": 3e-4})
    assert task_states(third)["approval_gate"] == "failed"
    assert task_states(third)["record_approval"] != "success"
    rejected = [v for v in registry.list_versions() if v.status == "Rejected"]
    assert len(rejected) == 1 and "min" in rejected[0].approval_comment.lower()
    assert registry.version_for_alias("challenger").version == challenger.version
    assert approved_model_events(third.run_id) == []
