"""The page: what it says, once per try, to the alert log, a webhook on loopback and SNS through the named connection."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from include.ingestion.schema import SourceError
from reviewflow.notifiers import ReviewflowFailureNotifier

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A Slack-compatible webhook on 127.0.0.1 that keeps what it is sent."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
    thread.join()


def failed_try(try_number: int) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="reviews_ingest", task_id="stage_raw", run_id="manual__2026-01-02", try_number=try_number, max_tries=2,
        map_index=-1, log_url=f"http://localhost:8080/dags/reviews_ingest/runs/manual__2026-01-02/tasks/stage_raw?try_number={try_number}",
    )
    return {"ti": ti, "exception": SourceError("/data/nope.tsv.gz: file not found\nTraceback details the page leaves out")}


def test_a_failed_try_pages_once_with_what_broke_and_where_to_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: tuple[str, list[dict]]
) -> None:
    url, posted = webhook
    monkeypatch.setenv("REVIEWFLOW_ALERT_LOG", str(tmp_path / "alerts.jsonl"))
    monkeypatch.setenv("REVIEWFLOW_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("REVIEWFLOW_RUNBOOK_URL", "https://git.example/reviewflow/docs/runbook.md")

    # The same try reaching the retry and the failure callback (two paths) pages once; the next try pages again.
    ReviewflowFailureNotifier(will_retry=True)(failed_try(1))
    ReviewflowFailureNotifier()(failed_try(1))
    ReviewflowFailureNotifier()(failed_try(2))

    pages = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [page["try_number"] for page in pages] == [1, 2] and len(posted) == 2
    first = pages[0]
    assert first["title"] == "[reviewflow] reviews_ingest.stage_raw failed"
    message = first["message"]
    assert "DAG: reviews_ingest  Task: stage_raw" in message
    assert "Run: manual__2026-01-02 (try 1 of 3, Airflow retries it)" in message
    assert "Error: SourceError: /data/nope.tsv.gz: file not found\n" in message and "Traceback" not in message
    assert "Log: http://localhost:8080/dags/reviews_ingest/runs/manual__2026-01-02/tasks/stage_raw?try_number=1" in message
    assert "Runbook: https://git.example/reviewflow/docs/runbook.md#reviews_ingest-stage_raw" in message
    assert '<a id="reviews_ingest-stage_raw"></a>' in RUNBOOK.read_text()
    assert "(try 2 of 3, no retry left)" in pages[1]["message"]
    assert posted[0]["text"].startswith("*[reviewflow] reviews_ingest.stage_raw failed*\nDAG: reviews_ingest")


def test_sns_pages_go_through_the_connection_the_settings_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.client

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}}),
        "AIRFLOW_CONN_REVIEWFLOW_PAGER": json.dumps({"conn_type": "aws", "extra": {"region_name": "eu-west-1"}}),
        "AIRFLOW_VAR_REVIEWFLOW_AWS_CONN_ID": "reviewflow_pager",
        "REVIEWFLOW_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
    }.items():
        monkeypatch.setenv(key, value)
    regions: list[tuple[str, str]] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        regions.append((operation, client.meta.region_name))
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    with mock_aws():
        sns = boto3.client("sns", region_name="eu-west-1")
        topic = sns.create_topic(Name="reviewflow-pages")["TopicArn"]
        queue = boto3.client("sqs", region_name="eu-west-1")
        queue_url = queue.create_queue(QueueName="pages")["QueueUrl"]
        queue_arn = queue.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        monkeypatch.setenv("REVIEWFLOW_SNS_TOPIC_ARN", topic)

        ReviewflowFailureNotifier()(failed_try(1))

        assert ("Publish", "eu-west-1") in regions  # the pager connection's region, not aws_default's
        [delivered] = queue.receive_message(QueueUrl=queue_url)["Messages"]
    assert "Error: SourceError: /data/nope.tsv.gz: file not found" in delivered["Body"]
