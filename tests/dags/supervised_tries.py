"""Run tries of one task the way a worker does: each under Airflow's real supervisor, in a forked process.

``python -m tests.dags.supervised_tries DAG_ID TASK_ID TRIES`` parses ``[core] dags_folder``, creates a
manual run of ``DAG_ID`` and runs tries 1..TRIES of ``TASK_ID`` with ``supervise_task`` (what the Local
and Celery executors call), talking to the execution API in-process instead of an API server. A test
can then ``kill -9`` a try's task process as the kernel's OOM killer would. Prints one JSON line per
try: ``{"try": n, "exit_code": c, "final_state": s}``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid

from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
from airflow.configuration import conf
from airflow.executors.workloads import BundleInfo
from airflow.models.dagbag import DBDagBag
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.sdk.api.datamodels._generated import TaskInstance as WorkloadTaskInstance
from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor, in_process_api_server, supervise_task
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from airflow.utils.types import DagRunTriggeredByType, DagRunType

BUNDLE = "dags-folder"


def create_run(dag_id: str) -> str:
    """Write the DAGs folder to the metadata DB and create a running manual run of ``dag_id``."""
    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    folder = conf.get("core", "dags_folder")
    sync_bag_to_db(BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name=BUNDLE), BUNDLE, None)
    now = dt.datetime.now(dt.UTC)
    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        run = dag.create_dagrun(
            run_id=f"manual__{uuid.uuid4()}", logical_date=None, run_after=now, data_interval=None,
            run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.TEST, triggering_user_name="tests",
            state=DagRunState.RUNNING, conf={}, start_date=now, session=session,
        )
        return run.run_id


def queue_next_try(dag_id: str, run_id: str, task_id: str) -> WorkloadTaskInstance:
    """Queue the task's next try, as the scheduler does, and describe it as an executor workload does."""
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
        ti = run.get_task_instance(task_id, session=session)
        ti.try_number += 1
        ti.state = TaskInstanceState.QUEUED
        session.commit()
        return WorkloadTaskInstance(
            id=ti.id, task_id=ti.task_id, dag_id=ti.dag_id, run_id=ti.run_id, try_number=ti.try_number,
            map_index=ti.map_index, dag_version_id=ti.dag_version_id,
        )


def main(dag_id: str, task_id: str, tries: int) -> None:
    run_id = create_run(dag_id)
    api = in_process_api_server()
    for _ in range(tries):
        workload = queue_next_try(dag_id, run_id, task_id)
        with create_session() as session:
            dag_file = session.get(TaskInstance, workload.id).dag_model.relative_fileloc
        client = InProcessTestSupervisor._Client(base_url="http://in-process/", token="", transport=api.transport)
        exit_code = supervise_task(
            ti=workload, bundle_info=BundleInfo(name=BUNDLE), dag_rel_path=dag_file, token="", client=client
        )
        with create_session() as session:
            state = session.get(TaskInstance, workload.id).state
        print(json.dumps({"run_id": run_id, "try": workload.try_number, "exit_code": int(exit_code), "state": state}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
