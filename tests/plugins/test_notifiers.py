"""The page: what it says, once per try, to the alert log, a webhook on loopback and SNS through the named connection."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from include.ingestion.schema import SourceError
from reviewflow.notifiers import ReviewflowFailureNotifier, send_alert
from tests.conftest import AWS_CONN_ID, aws_connection, made, task_context

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
    return task_context(
        "reviews_ingest", "stage_raw", "manual__2026-01-02", try_number,
        exception=SourceError("/data/nope.tsv.gz: file not found\nTraceback details the page leaves out"),
    )


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


def pages_queue(region: str) -> tuple[str, str]:
    """An SNS topic for pages and an SQS queue subscribed to it (raw delivery): the topic ARN and the queue URL."""
    sns = boto3.client("sns", region_name=region)
    topic = sns.create_topic(Name="reviewflow-pages")["TopicArn"]
    queue = boto3.client("sqs", region_name=region)
    queue_url = queue.create_queue(QueueName="pages")["QueueUrl"]
    queue_arn = queue.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return topic, queue_url


def test_sns_pages_go_through_the_connection_the_settings_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWFLOW_ALERT_LOG", str(tmp_path / "alerts.jsonl"))
    # The connection is the only way to AWS, in eu-west-1 (its region): no aws_default, no credentials elsewhere.
    with aws_connection(monkeypatch, "eu-west-1") as calls:
        topic, queue_url = pages_queue("eu-west-1")
        monkeypatch.setenv("REVIEWFLOW_SNS_TOPIC_ARN", topic)

        ReviewflowFailureNotifier()(failed_try(1))

        assert [publish["TargetArn"] for publish in made(calls, "Publish")] == [topic]
        [delivered] = boto3.client("sqs", region_name="eu-west-1").receive_message(QueueUrl=queue_url)["Messages"]
    assert "Error: SourceError: /data/nope.tsv.gz: file not found" in delivered["Body"]


def test_a_tasks_own_page_goes_through_the_tasks_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.config import load_settings

    monkeypatch.setenv("REVIEWFLOW_ALERT_LOG", str(tmp_path / "alerts.jsonl"))
    with aws_connection(monkeypatch, "eu-west-1") as calls:
        topic, queue_url = pages_queue("eu-west-1")
        monkeypatch.setenv("REVIEWFLOW_SNS_TOPIC_ARN", topic)
        monkeypatch.setenv("AIRFLOW_VAR_REVIEWFLOW_AWS_CONN_ID", "not_defined")  # the setting names no connection

        send_alert(load_settings(), "[reviewflow] a warning", "details", aws_conn_id=AWS_CONN_ID)

        assert len(made(calls, "Publish")) == 1
        [delivered] = boto3.client("sqs", region_name="eu-west-1").receive_message(QueueUrl=queue_url)["Messages"]
    assert delivered["Body"] == "details"
