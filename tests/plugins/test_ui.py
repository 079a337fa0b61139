"""reviewflow.ui: the quality report page, mounted on Airflow's own API server app (as the
api-server builds it, plugins included) and called over HTTP with a real login token.

The quality gate's button pointing here is checked where the gate runs (tests/dags/
test_reviews_ingest.py) and clicked in a browser in tests/e2e.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from reviewflow.links import quality_report_url
from reviewflow.runs import run_key_of
from tests.dags.conftest import dag_bag, data_root  # noqa: F401 (fixtures)
from tests.plugins.conftest import BUCKET, REGION

REPORT = "<!doctype html><title>Data quality</title><p>hasSize(*) &gt;= 2000 (param min_rows)</p>"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    """Airflow's API server app (TestClient) and the headers of a user logged in through ``POST /auth/token``."""
    from fastapi.testclient import TestClient

    from airflow.api_fastapi.app import create_app

    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "oncall:viewer")
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
        client = TestClient(create_app())
        password = json.loads(passwords.read_text())["oncall"]
        token = client.post("/auth/token", json={"username": "oncall", "password": password}).json()["access_token"]
        yield client, {"Authorization": f"Bearer {token}"}


def finished_run(dag_bag, tmp_path: Path) -> str:
    """The run id of a real reviews_ingest run (ended at once: its source does not exist)."""
    return dag_bag.dags["reviews_ingest"].test(run_conf={"source_uri": str(tmp_path / "absent.tsv")}).run_id


def path_of(run_id: str) -> str:
    return urlsplit(quality_report_url("reviews_ingest", run_id)).path


def test_the_report_page_needs_a_login_and_serves_the_runs_report(api, dag_bag, data_root: Path, tmp_path: Path) -> None:
    client, logged_in = api
    run_id = finished_run(dag_bag, tmp_path)
    report = data_root / "reports" / run_key_of(run_id) / "quality" / "report.html"

    missing = client.get(path_of(run_id), headers=logged_in)
    assert missing.status_code == 404 and str(report) in missing.json()["detail"]
    report.parent.mkdir(parents=True)
    report.write_text(REPORT)

    assert client.get(path_of(run_id)).status_code == 401
    assert client.get(path_of(run_id), cookies={"_token": "forged"}).status_code == 403
    served = client.get(path_of(run_id), headers=logged_in)
    assert served.status_code == 200 and served.text == REPORT
    assert served.headers["content-type"].startswith("text/html")
    assert served.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"

    unknown = client.get(path_of("manual__1999-01-01T00:00:00+00:00"), headers=logged_in)
    assert unknown.status_code == 404 and "has no run" in unknown.json()["detail"]


def test_a_report_on_s3_is_read_through_the_configured_connection(api, dag_bag, aws, tmp_path: Path) -> None:
    client, logged_in = api
    run_id = finished_run(dag_bag, tmp_path)
    key = f"reviewflow/reports/{run_key_of(run_id)}/quality/report.html"
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=key, Body=REPORT.encode())

    served = client.get(path_of(run_id), headers=logged_in)

    assert served.status_code == 200 and served.text == REPORT
    assert [params["Key"] for name, params in aws if name == "GetObject"] == [key]
