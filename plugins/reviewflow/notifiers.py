"""Paging: a failure notifier every DAG uses, and ``send_alert`` for warnings.

Every alert is appended as a JSON line to the alert log (``REVIEWFLOW_ALERT_LOG``);
it also goes to a Slack-compatible webhook and to SNS when those are configured.
The message says what failed, why, where the log is and how to rerun safely.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shlex
import urllib.request
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from include.config import Settings, load_settings

log = logging.getLogger(__name__)


def send_alert(settings: Settings, title: str, message: str, context: Any = None) -> dict[str, Any]:
    """Page on-call with ``title`` and ``message``; returns the alert record written."""
    record: dict[str, Any] = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "title": title,
        "message": message,
    }
    if context is not None:
        ti = context["ti"]
        record |= {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "try_number": ti.try_number}
    settings.alert_log.parent.mkdir(parents=True, exist_ok=True)
    with settings.alert_log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    log.warning("ALERT %s: %s", title, message)
    if settings.alert_webhook_url:
        _post_webhook(settings.alert_webhook_url, f"*{title}*\n{message}")
    if settings.sns_topic_arn:
        from airflow.providers.amazon.aws.hooks.sns import SnsHook

        SnsHook().publish_to_target(target_arn=settings.sns_topic_arn, message=message, subject=title[:100])
    return record


def _post_webhook(url: str, text: str) -> None:
    request = urllib.request.Request(
        url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as error:  # the alert log already has the record; never mask the original failure
        log.error("could not post alert to webhook: %s", error)


def api_base_url() -> str:
    """The Airflow API server's public URL (``[api] base_url``), the base of every UI link."""
    from airflow.sdk.configuration import conf

    return conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")


def run_url(dag_id: str, run_id: str) -> str:
    """The Airflow 3 UI page of one DAG run."""
    return f"{api_base_url()}/dags/{dag_id}/runs/{quote(run_id)}"


def clear_task_command(dag_id: str, run_id: str, task_id: str) -> str:
    """A shell command that clears ``task_id`` and its downstream tasks in run ``run_id`` only.

    ``airflow tasks clear`` selects runs by logical date, which manual and asset-triggered
    runs may lack, so this is the REST API's run-scoped ``clearTaskInstances`` (token from
    ``POST /auth/token``).
    """
    body = {
        "dag_run_id": run_id, "task_ids": [task_id], "include_downstream": True, "only_failed": False, "dry_run": False,
    }
    url = f"{api_base_url()}/api/v2/dags/{quote(dag_id)}/clearTaskInstances"
    return (
        f"curl -X POST {shlex.quote(url)} -H \"Authorization: Bearer $AIRFLOW_TOKEN\" "
        f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))}"
    )


def failure_message(context: Any) -> tuple[str, str]:
    """Title and body of a task-failure page, built from an Airflow callback context."""
    ti = context["ti"]
    exception = context.get("exception")
    reason = f"{type(exception).__name__}: {exception}" if exception else "unknown (see the task log)"
    title = f"[reviewflow] {ti.dag_id}.{ti.task_id} failed"
    body = "\n".join(
        [
            f"Run: {ti.run_id} (try {ti.try_number}): {run_url(ti.dag_id, ti.run_id)}",
            f"Reason: {reason}",
            f"Log: {getattr(ti, 'log_url', None) or run_url(ti.dag_id, ti.run_id)}",
            "Every task is idempotent: fix the cause, then rerun this run's task and the ones it held up: "
            "Clear on the task's page (with downstream), or",
            f"  {clear_task_command(ti.dag_id, ti.run_id, ti.task_id)}",
        ]
    )
    return title, body


def page_dag_run_failure(context: Any) -> None:
    """DAG-level ``on_failure_callback``: one page per failed run (task pages carry the errors)."""
    dag_run = context["dag_run"]
    title = f"[reviewflow] run {dag_run.dag_id} / {dag_run.run_id} failed"
    body = (
        f"Reason: {context.get('reason') or 'a task failed'}. The failed task's own alert has its error.\n"
        f"Run: {run_url(dag_run.dag_id, dag_run.run_id)}"
    )
    send_alert(load_settings(), title, body)


class ReviewflowFailureNotifier(BaseNotifier):
    """``on_failure_callback`` for every reviewflow DAG: pages with a useful message."""

    def notify(self, context: Any) -> None:
        title, body = failure_message(context)
        send_alert(load_settings(), title, body, context)
