"""The runs the browser test looks at, written into a throw-away Airflow metadata DB.

Run as ``python -m tests.e2e.seed <out.json>`` with ``AIRFLOW_HOME``, ``REVIEWFLOW_DATA_ROOT`` and
``AIRFLOW__API__BASE_URL`` pointing at the test's private stack (conftest.py does). It writes:

* a real failed ``reviews_ingest`` run (``dag.test()`` on a source that does not exist): the
  failure notifier pages into the alert log, whose run link the test follows to rerun the task;
* a ``reviews_ingest`` run whose tasks are marked success (``mark_success_pattern``) with the
  quality gate's report file and its "Quality report" link as the task runner stores it (XCom
  ``_link_QualityReportLink``); the gate itself needs Spark (≈ 50 s), which tests/dags runs;
* a ``reviews_train`` run whose ``human_approval`` waits for input, its request created through
  the Execution API's own handler with the operator's options and form params; the whole chain
  behind it (training, the answer reaching the registry) runs in tests/dags/test_reviews_train.py.

It prints nothing but Airflow's logs; the run ids go to ``out.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from include.config import load_settings
from include.quality.report import build_report, render_html
from include.quality.results import CheckResult

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
REPORT_MIN_ROWS = 100  # the value the seeded report names as "(param min_rows)"


def failed_ingest_run(dag: Any, data_root: Path) -> str:
    """A reviews_ingest run that really fails: its source does not exist."""
    return dag.test(run_conf={"source_uri": str(data_root / "absent.tsv")}).run_id


def reported_ingest_run(dag: Any) -> str:
    """A successful reviews_ingest run with the quality gate's report and "Quality report" link."""
    from airflow.models.xcom import XComModel
    from airflow.sdk.types import TaskInstanceKey
    from airflow.utils.session import create_session

    from reviewflow.links import QualityReportLink
    from reviewflow.operators.quality import report_prefix
    from reviewflow.runs import run_key_of

    run_id = dag.test(run_conf={"min_rows": REPORT_MIN_ROWS}, mark_success_pattern=".*").run_id
    settings = load_settings()
    report = build_report(
        dataset="reviews", snapshot=run_key_of(run_id), snapshot_uri=f"{settings.data_root}/curated/reviews",
        suite_source="include/quality/reviews_suite.yaml", engine="spark",
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        results=[CheckResult(name="hasSize(*)", kind="constraint", level="Error", status="Success", metric="Size(*)",
                             observed=297.0, threshold=f">= {REPORT_MIN_ROWS} (param min_rows)")],
        metrics={"Size(*)": 297.0}, bias=None, previous_snapshot=None,
    )
    path = Path(report_prefix(settings, run_key_of(run_id))) / "report.html"
    path.parent.mkdir(parents=True)
    path.write_text(render_html(report), encoding="utf-8")

    link = QualityReportLink()
    gate = dag.get_task("quality_gate")
    url = link.get_link(gate, ti_key=TaskInstanceKey(dag.dag_id, gate.task_id, run_id, try_number=1))
    with create_session() as session:
        XComModel.set(key=link.xcom_key, value=url, dag_id=dag.dag_id, task_id=gate.task_id, run_id=run_id,
                      session=session)
    return run_id


def run_awaiting_approval(dag: Any) -> str:
    """A reviews_train run whose human_approval task waits for an answer in Required Actions."""
    from airflow.api_fastapi.execution_api.datamodels.hitl import HITLDetailRequest
    from airflow.api_fastapi.execution_api.routes.hitl import upsert_hitl_detail
    from airflow.models.dagrun import DagRun, get_or_create_dagrun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    approval = dag.get_task("human_approval")
    now = dt.datetime.now(dt.UTC)
    with create_session() as session:
        run = get_or_create_dagrun(
            dag=SerializedDagModel.get_dag(dag.dag_id, session=session), run_id=DagRun.generate_run_id(
                run_type=DagRunType.MANUAL, logical_date=None, run_after=now),
            logical_date=None, data_interval=None, run_after=now, start_date=now,
            conf={"approval_mode": "manual"}, triggered_by=DagRunTriggeredByType.UI, triggering_user_name="admin",
            session=session,
        )
        run.state = DagRunState.RUNNING
        for ti in run.get_task_instances(session=session):
            if ti.task_id == approval.task_id:
                ti.state = TaskInstanceState.AWAITING_INPUT
                waiting = ti
            elif ti.task_id != "record_approval":
                ti.state = TaskInstanceState.SUCCESS
        session.flush()
        upsert_hitl_detail(waiting.id, HITLDetailRequest(
            ti_id=waiting.id, options=approval.options, subject=f"{approval.subject} reviewflow-sentiment v1",
            body="The challenger against the champion on the same test rows (seeded for the browser test).",
            defaults=approval.defaults, multiple=approval.multiple, params=approval.serialized_params,
        ), session)
        return run.run_id


def main(out: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dags = DagBag(dag_folder=str(DAGS_FOLDER)).dags
    data_root = Path(load_settings().data_root)
    runs = {
        "failed_ingest": failed_ingest_run(dags["reviews_ingest"], data_root),  # dag.test also stores both DAGs
        "reported_ingest": reported_ingest_run(dags["reviews_ingest"]),
        "awaiting_approval": run_awaiting_approval(dags["reviews_train"]),
    }
    Path(out).write_text(json.dumps(runs))


if __name__ == "__main__":
    main(sys.argv[1])
