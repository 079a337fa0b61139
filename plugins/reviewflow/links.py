"""Operator extra links: buttons on a task instance's page in the Airflow UI.

The quality gate's report is a file under the data root, which a browser cannot open; the
"Quality report" button leads to the page of :mod:`reviewflow.ui` that serves it from the
Airflow API server, behind Airflow's own login.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from reviewflow.notifiers import api_base_url

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

# Mount point of reviewflow's FastAPI app on the API server (reviewflow.ui).
UI_PREFIX = "/reviewflow"
QUALITY_REPORT_ROUTE = "/dags/{dag_id}/runs/{run_id}/quality-report"


def quality_report_url(dag_id: str, run_id: str) -> str:
    """The URL of the quality report page of one DAG run."""
    path = QUALITY_REPORT_ROUTE.format(dag_id=quote(dag_id, safe=""), run_id=quote(run_id, safe=""))
    return f"{api_base_url()}{UI_PREFIX}{path}"


class QualityReportLink(BaseOperatorLink):
    """The "Quality report" button of the quality gate: the run's HTML report, served by the API server."""

    name = "Quality report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return quality_report_url(ti_key.dag_id, ti_key.run_id)
