"""reviewflow's pages on the Airflow API server (an Airflow plugin): each run's quality report.

The quality gate writes ``<data_root>/reports/<run_key>/quality/report.html``, on local disk or
S3, where a browser cannot open it. The FastAPI app built here, mounted at ``/reviewflow`` on the
API server, serves it at ``/reviewflow/dags/<dag_id>/runs/<run_id>/quality-report``, the target
of the quality gate's "Quality report" button (:class:`reviewflow.links.QualityReportLink`).

Airflow does not authenticate plugin apps, so the route does: the caller must be logged in (the
UI's session cookie, or a bearer token from ``POST /auth/token``) and allowed to read the DAG's
task instances, as for a task log. The report is our own escaped HTML; it is served with a
Content-Security-Policy that allows no script, so nothing in it runs on the Airflow origin.

Every task process loads the plugins too (for macros), so the API-server imports happen only
when the API server asks for the app (:attr:`ReviewflowUiPlugin.fastapi_apps`). No postponed
annotations here: FastAPI reads the route's parameter types, imported inside :func:`create_app`.
"""

from functools import cache
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin

from reviewflow.links import QUALITY_REPORT_ROUTE, UI_PREFIX

if TYPE_CHECKING:
    from fastapi import FastAPI

REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


@cache
def create_app() -> "FastAPI":
    """The FastAPI app of reviewflow's pages (built once per process)."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import HTMLResponse
    from sqlalchemy import select

    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.common.db.common import SessionDep
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from airflow.models.dagrun import DagRun
    from include.config import load_settings
    from reviewflow.settings import aws_conn_id
    from include.uris import is_s3, join_uri
    from reviewflow.backends import storage_for
    from reviewflow.operators.quality import report_prefix
    from reviewflow.runs import run_key_of

    app = FastAPI(title="reviewflow", description="reviewflow's pages: the quality report of each DAG run")

    @app.get(
        QUALITY_REPORT_ROUTE,
        response_class=HTMLResponse,
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))],
    )
    def quality_report(dag_id: str, run_id: str, session: SessionDep) -> HTMLResponse:
        """The HTML quality report of run ``run_id`` of ``dag_id``; 404 naming what is missing."""
        if session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)) is None:
            raise HTTPException(404, f"DAG {dag_id!r} has no run {run_id!r}")
        settings = load_settings()
        uri = join_uri(report_prefix(settings, run_key_of(run_id)), "report.html")
        storage = storage_for(uri, aws_conn_id() if is_s3(uri) else None)
        if not storage.exists(uri):
            raise HTTPException(404, f"run {run_id!r} has no quality report at {uri} (did its quality_gate run? see its log)")
        return HTMLResponse(storage.read_bytes(uri).decode("utf-8"), headers=REPORT_HEADERS)

    return app


class ReviewflowUiPlugin(AirflowPlugin):
    """Mounts reviewflow's pages (:func:`create_app`) on the API server at ``/reviewflow``."""

    name = "reviewflow_ui"

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [{"app": create_app(), "url_prefix": UI_PREFIX, "name": "reviewflow pages"}]
