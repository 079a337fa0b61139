"""Deadline alerts: every DAG has one, and a run still going past it pages while it runs.

The run is created the way the scheduler and the trigger form create one (queued, from the DAG
serialized in the metadata DB); the test moves its deadline into the past instead of waiting an
hour, then does what the scheduler and the triggerer do with a missed deadline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from include.runbook import DAGS, anchor, deadline_title
from tests.dags.conftest import DAGS_FOLDER


@pytest.fixture
def dags_with_deadlines(data_root: Path, monkeypatch: pytest.MonkeyPatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("REVIEWFLOW_DEADLINE_ALERTS", "on")
    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_every_dag_has_a_deadline_that_pages_from_the_triggerer(dags_with_deadlines) -> None:
    from airflow.sdk import AsyncCallback, DeadlineReference

    assert set(dags_with_deadlines.dags) == set(DAGS)
    for dag_id, dag in dags_with_deadlines.dags.items():
        [deadline] = dag.deadline
        assert deadline.reference == DeadlineReference.DAGRUN_QUEUED_AT, dag_id
        assert deadline.interval == DAGS[dag_id].deadline and dag.dagrun_timeout > deadline.interval, dag_id
        assert isinstance(deadline.callback, AsyncCallback), dag_id
        assert deadline.callback.path == "reviewflow.notifiers.page_deadline_missed", dag_id


def test_a_run_past_its_deadline_pages_while_it_is_still_running(dags_with_deadlines, data_root: Path) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import sync_bag_to_db
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.deadline import Deadline
    from airflow.models.trigger import Trigger
    from airflow.sdk import timezone
    from airflow.sdk._shared.module_loading import import_string
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(dags_with_deadlines, "dags-folder", None)
    now = timezone.utcnow()
    run_id = f"manual__deadline-test-{now.timestamp()}"
    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag("reviews_ingest", session=session)
        dag_run = dag.create_dagrun(
            run_id=run_id, run_after=now, run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.UI,
            state=DagRunState.QUEUED, conf={}, session=session,
        )
    with create_session() as session:
        dag_run = session.get(DagRun, dag_run.id)
        [deadline] = session.scalars(select(Deadline).where(Deadline.dagrun_id == dag_run.id)).all()
        assert deadline.deadline_time == dag_run.queued_at + DAGS["reviews_ingest"].deadline
        dag_run.set_state(DagRunState.RUNNING)  # the scheduler starts it
        deadline.deadline_time = timezone.utcnow() - dt.timedelta(seconds=1)  # an hour later, without the wait

    # The scheduler's loop: a deadline in the past and not yet missed queues its callback as a trigger.
    with create_session() as session:
        missed = session.scalars(
            select(Deadline).where(Deadline.deadline_time < timezone.utcnow()).where(~Deadline.missed)
        ).all()
        assert [d.dagrun_id for d in missed] == [dag_run.id]
        missed[0].handle_miss(session)
        session.flush()
        trigger = session.get(Trigger, missed[0].callback.trigger_id)
        classpath, kwargs = trigger.classpath, trigger.kwargs

    # The triggerer runs it.
    async def run_trigger() -> list[dict]:
        return [event.payload async for event in import_string(classpath)(**kwargs).run()]

    events = asyncio.run(run_trigger())
    assert events[-1]["state"] == "success", events
    with create_session() as session:
        assert session.get(DagRun, dag_run.id).state == DagRunState.RUNNING  # paged while it still runs

    [page] = [json.loads(line) for line in (data_root / "alerts.jsonl").read_text().splitlines()]
    assert page["title"] == deadline_title("reviews_ingest") and page["run_id"] == run_id
    assert f"Run: {run_id} is still running" in page["message"]
    assert page["runbook_url"].endswith("docs/runbook.md#" + anchor("reviews_ingest", "deadline"))
    # A second look at the same deadline (another scheduler, a retried trigger) does not page again.
    asyncio.run(run_trigger())
    assert len((data_root / "alerts.jsonl").read_text().splitlines()) == 1
