"""Paging: task failures (every failed try), failed runs, missed deadlines, and ``send_alert`` for warnings.

Every page is appended as a JSON line to the alert log (``REVIEWFLOW_ALERT_LOG``) and goes to a
Slack-compatible webhook and to SNS (through the ``reviewflow_aws_conn_id`` connection) when those
are configured. A page names what failed, where (DAG, task, run, try), why (the error's first line),
the log, the runbook section (docs/runbook.md, by alert title) and how to rerun safely. A page
with a key is sent once: the same try of a task reached through two callback paths pages once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shlex
import urllib.request
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from include.config import Settings, load_aws_settings, load_settings
from include.runbook import anchor, deadline_title, run_failure_title, section_url, task_failure_title

log = logging.getLogger(__name__)


def send_alert(
    settings: Settings,
    title: str,
    message: str,
    context: Any = None,
    *,
    fields: dict[str, Any] | None = None,
    once_key: tuple[str, ...] | None = None,
) -> dict[str, Any] | None:
    """Page on-call with ``title`` and ``message``; returns the alert record written.

    :param context: a task's Airflow context: its DAG, task, run and try go into the record.
    :param fields: more fields for the record (the JSON line), e.g. the runbook URL.
    :param once_key: page only the first time this key is seen (returns None after that).
    """
    record: dict[str, Any] = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "title": title,
        "message": message,
    }
    if context is not None:
        ti = context["ti"]
        record |= {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "try_number": ti.try_number}
    record |= fields or {}
    settings.alert_log.parent.mkdir(parents=True, exist_ok=True)
    if once_key is not None and not _first_time(settings, once_key):
        log.info("already paged for %s; not paging again", once_key)
        return None
    with settings.alert_log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    log.warning("ALERT %s: %s", title, message)
    if settings.alert_webhook_url:
        _post_webhook(settings.alert_webhook_url, f"*{title}*\n{message}")
    if settings.sns_topic_arn:
        _publish_sns(settings, title, message)
    return record


def _first_time(settings: Settings, key: tuple[str, ...]) -> bool:
    """Whether ``key`` is paged for the first time: a marker beside the alert log, created exclusively."""
    marker = settings.alert_log.parent / "sent" / hashlib.sha256("\0".join(key).encode()).hexdigest()
    marker.parent.mkdir(exist_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def _post_webhook(url: str, text: str) -> None:
    request = urllib.request.Request(
        url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as error:  # the alert log already has the record; never mask the original failure
        log.error("could not post alert to webhook: %s", error)


def _publish_sns(settings: Settings, title: str, message: str) -> None:
    """Publish to the settings' SNS topic through the connection ``reviewflow_aws_conn_id`` names."""
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    conn_id = load_aws_settings(settings).aws_conn_id
    SnsHook(aws_conn_id=conn_id).publish_to_target(target_arn=settings.sns_topic_arn, message=message, subject=title[:100])


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


def runbook_line(settings: Settings, section_anchor: str) -> str:
    """The page's line linking its runbook section."""
    return f"Runbook: {section_url(settings.runbook_url, section_anchor)}"


def first_line(exception: BaseException | None) -> str:
    """``Type: first line of the message``: what a page says about an error (the log has the rest)."""
    if exception is None:
        return "unknown (see the task log)"
    lines = str(exception).strip().splitlines()
    return f"{type(exception).__name__}: {lines[0]}" if lines else type(exception).__name__


def failure_page(context: Any, settings: Settings, will_retry: bool) -> tuple[str, str, dict[str, Any]]:
    """Title, body and record fields of a failed try's page, from an Airflow callback context."""
    ti = context["ti"]
    max_tries = getattr(ti, "max_tries", None)
    tries = f"try {ti.try_number}" + (f" of {max_tries + 1}" if isinstance(max_tries, int) else "")
    error = first_line(context.get("exception"))
    log_url = getattr(ti, "log_url", None) or run_url(ti.dag_id, ti.run_id)
    runbook = section_url(settings.runbook_url, anchor(ti.dag_id, ti.task_id))
    body = "\n".join(
        [
            f"DAG: {ti.dag_id}  Task: {ti.task_id}",
            f"Run: {ti.run_id} ({tries}{', Airflow retries it' if will_retry else ', no retry left'}): "
            f"{run_url(ti.dag_id, ti.run_id)}",
            f"Error: {error}",
            f"Log: {log_url}",
            f"Runbook: {runbook}",
            "Every task is idempotent: fix the cause, then rerun this run's task and the ones it held up: "
            "Clear on the task's page (with downstream), or",
            f"  {clear_task_command(ti.dag_id, ti.run_id, ti.task_id)}",
        ]
    )
    return task_failure_title(ti.dag_id, ti.task_id), body, {"error": error, "log_url": log_url, "runbook_url": runbook}


class ReviewflowFailureNotifier(BaseNotifier):
    """``on_failure_callback`` and ``on_retry_callback`` of every reviewflow task: one page per failed try.

    :param will_retry: whether it is the retry callback (the page says Airflow retries the task).
    """

    def __init__(self, will_retry: bool = False) -> None:
        super().__init__()
        self.will_retry = will_retry

    def notify(self, context: Any) -> None:
        settings = load_settings()
        title, body, fields = failure_page(context, settings, self.will_retry)
        ti = context["ti"]
        once = ("task", ti.dag_id, ti.run_id, ti.task_id, str(getattr(ti, "map_index", -1)), str(ti.try_number))
        send_alert(settings, title, body, context, fields=fields, once_key=once)


def page_dag_run_failure(context: Any) -> None:
    """DAG-level ``on_failure_callback``: one page per failed run (task pages carry the errors)."""
    settings = load_settings()
    dag_run = context["dag_run"]
    runbook = section_url(settings.runbook_url, anchor(dag_run.dag_id, "run-failed"))
    body = "\n".join(
        [
            f"DAG: {dag_run.dag_id}  Run: {dag_run.run_id}: {run_url(dag_run.dag_id, dag_run.run_id)}",
            f"Reason: {context.get('reason') or 'a task failed'}. The failed task's own page has its error.",
            f"Runbook: {runbook}",
        ]
    )
    send_alert(
        settings, run_failure_title(dag_run.dag_id), body,
        fields={"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "runbook_url": runbook},
        once_key=("run", dag_run.dag_id, dag_run.run_id),
    )


def deadline_page(context: dict[str, Any], settings: Settings) -> tuple[str, str, dict[str, Any]]:
    """Title, body and record fields of a missed-deadline page, from the context a deadline callback gets
    (``{"dag_run": <the REST API's DAG run>, "deadline": {"id", "deadline_time"}}``)."""
    run = context["dag_run"]
    dag_id, run_id = run["dag_id"], run["dag_run_id"]
    runbook = section_url(settings.runbook_url, anchor(dag_id, "deadline"))
    body = "\n".join(
        [
            f"DAG: {dag_id}  Run: {run_id} is still {run.get('state')}: {run_url(dag_id, run_id)}",
            f"Queued at {run.get('queued_at')}, started at {run.get('start_date')}; "
            f"the deadline was {context['deadline']['deadline_time']}.",
            "Nothing was stopped. Look for a task queued but not running, one waiting for input, or one not progressing.",
            f"Runbook: {runbook}",
        ]
    )
    return deadline_title(dag_id), body, {"dag_id": dag_id, "run_id": run_id, "runbook_url": runbook}


async def page_deadline_missed(context: dict[str, Any]) -> None:
    """The deadline alerts' callback (an ``AsyncCallback``, run by the triggerer): page that a run is late."""
    from asgiref.sync import sync_to_async

    settings = load_settings()
    title, body, fields = deadline_page(context, settings)
    once = ("deadline", fields["dag_id"], fields["run_id"], str(context["deadline"]["id"]))
    await sync_to_async(send_alert)(settings, title, body, fields=fields, once_key=once)
