"""Planted secrets (in the AWS connection and the environment) never reach a log, a summary or an alert.

One ingest run that succeeds and one that fails and pages (the webhook included, whose URL carries a
secret) run with the secrets set; then every file under the data root and the Airflow home's logs,
the OpenLineage events, and everything the runs printed, is searched for them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from include.sample_data import SampleSpec, write_sample
from tests.dags.helpers import alerts_of, fail_fast_on_regression
from tests.reliability import ReliabilityRecord

SECRETS = ("planted-aws-secret-9c1f", "planted-webhook-token-5e2a", "planted-endpoint-token-77b0")


def files_holding(folder: Path, secrets: tuple[str, ...]) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {secret}" for secret in secrets if secret.encode() in data]
    return found


@pytest.mark.reliability
def test_planted_secrets_never_reach_a_log_a_summary_or_an_alert(
    dag_bag, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, reliability: ReliabilityRecord, lineage_log: Path,
) -> None:
    aws_secret, webhook_token, endpoint_token = SECRETS
    reliability.section, reliability.case, reliability.path = "Security", "secrets in logs", "dag.test()"
    reliability.tried = "secrets planted in the AWS connection, the webhook URL and the endpoint token; a run that succeeds, one that fails and pages"
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(
        {"conn_type": "aws", "login": "AKIAPLANTED", "password": aws_secret, "extra": {"region_name": "us-east-1"}}))
    monkeypatch.setenv("REVIEWFLOW_ALERT_WEBHOOK_URL", f"http://127.0.0.1:9/hooks/{webhook_token}")  # nothing listens
    monkeypatch.setenv("REVIEWFLOW_ENDPOINT_TOKEN", endpoint_token)
    source = tmp_path / "reviews.tsv.gz"
    write_sample(source, SampleSpec(rows=300, seed=5))
    dag = dag_bag.dags["reviews_ingest"]
    fail_fast_on_regression(dag)

    succeeded = dag.test(run_conf={"source_uri": str(source), "min_rows": 100})
    failed = dag.test(run_conf={"source_uri": str(tmp_path / "missing.tsv.gz")})

    assert succeeded.state == "success" and failed.state == "failed"
    assert alerts_of(data_root, "stage_raw")  # the failure paged (and tried the webhook)
    printed = capfd.readouterr()
    leaks = files_holding(data_root, SECRETS) + files_holding(Path(os.environ["AIRFLOW_HOME"]) / "logs", SECRETS)
    assert lineage_log.is_file()  # the runs' OpenLineage events, which name every dataset a task touched
    leaks += files_holding(lineage_log.parent, SECRETS)
    leaks += [f"output: {secret}" for secret in SECRETS if secret in printed.out + printed.err + caplog.text]
    reliability.outcome = "no secret in any file under the data root, the Airflow logs, the lineage events or the output" if not leaks else f"leaked: {leaks[:3]}"
    assert leaks == []
