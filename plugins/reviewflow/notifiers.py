"""Paging: task failures (every failed try), failed runs, missed deadlines, and ``send_alert`` for warnings.

Every page is appended as a JSON line to the alert log (``REVIEWFLOW_ALERT_LOG``) and goes to a
Slack-compatible webhook and to SNS when those are configured: an operator's page through the
operator's own connection, a callback's through the one the settings name (``reviewflow_aws_conn_id``). A page names what failed, where (DAG, task, run, try), why (the error's first line),
the log, the runbook section (docs/runbook.md, by alert title) and how to rerun safely. A page
with a key is sent once: the same try of a task reached through two callback paths pages once.

A try whose process is killed (``kill -9``, out of memory) runs no callback, so every try also
leaves a start and an end mark beside the alert log: the next try pages for a predecessor that
started and never ended, and the failed run's page lists the tries that ended that way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shlex
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from include.config import Settings, load_settings
from include.runbook import anchor, deadline_title, run_failure_title, section_url, task_failure_title
from reviewflow.settings import aws_conn_id as settings_aws_conn_id

log = logging.getLogger(__name__)


def send_alert(
    settings: Settings,
    title: str,
    message: str,
    context: Any = None,
    *,
    aws_conn_id: str | None,
    region_name: str | None = None,
    fields: dict[str, Any] | None = None,
    once_key: tuple[str, ...] | None = None,
) -> dict[str, Any] | None:
    """Page on-call with ``title`` and ``message``; returns the alert record written.

    :param context: a task's Airflow context: its DAG, task, run and try go into the record.
    :param aws_conn_id: the connection SNS is published through (when ``REVIEWFLOW_SNS_TOPIC_ARN`` is set).
    :param region_name: its region; ``None``: the connection's.
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
        from airflow.providers.amazon.aws.hooks.sns import SnsHook

        SnsHook(aws_conn_id=aws_conn_id, region_name=region_name).publish_to_target(
            target_arn=settings.sns_topic_arn, message=message, subject=title[:100]
        )
    return record


def pager_conn_id(settings: Settings) -> str | None:
    """The connection a callback pages SNS through: the settings' (read only when SNS is configured)."""
    return settings_aws_conn_id() if settings.sns_topic_arn else None


def _first_time(settings: Settings, key: tuple[str, ...]) -> bool:
    """Whether ``key`` is paged for the first time: a marker beside the alert log, created exclusively."""
    marker = settings.alert_log.parent / "sent" / hashlib.sha256("\0".join(key).encode()).hexdigest()
    marker.parent.mkdir(parents=True, exist_ok=True)
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


def failure_page(
    ti: Any, settings: Settings, will_retry: bool, error: str, try_number: int, log_url: str
) -> tuple[str, str, dict[str, Any]]:
    """Title, body and record fields of the page for failed try ``try_number`` of task instance ``ti``."""
    max_tries = getattr(ti, "max_tries", None)
    tries = f"try {try_number}" + (f" of {max_tries + 1}" if isinstance(max_tries, int) else "")
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
    fields = {"error": error, "log_url": log_url, "runbook_url": runbook, "try_number": try_number}
    return task_failure_title(ti.dag_id, ti.task_id), body, fields


def task_log_url(ti: Any, try_number: int) -> str:
    """The Airflow 3 UI page of one try's log (the shape of ``ti.log_url``)."""
    mapped = f"/mapped/{ti.map_index}" if getattr(ti, "map_index", -1) >= 0 else ""
    return f"{run_url(ti.dag_id, ti.run_id)}/tasks/{quote(ti.task_id)}{mapped}?try_number={try_number}"


def try_key(ti: Any, try_number: int) -> tuple[str, ...]:
    """What names one try of a task instance: its page is sent once per key."""
    return ("task", ti.dag_id, ti.run_id, ti.task_id, str(getattr(ti, "map_index", -1)), str(try_number))


def _try_mark(settings: Settings, dag_id: str, run_id: str, name: str) -> Path:
    """A try's start or end mark: one folder per run, so a run's unfinished tries can be listed."""
    run = hashlib.sha256(f"{dag_id}\0{run_id}".encode()).hexdigest()
    return settings.alert_log.parent / "tries" / run / name


def _mark_name(ti: Any, try_number: int, event: str) -> str:
    return f"{ti.task_id}.{getattr(ti, 'map_index', -1)}.{try_number}.{event}"


def _mark(settings: Settings, ti: Any, event: str) -> None:
    mark = _try_mark(settings, ti.dag_id, ti.run_id, _mark_name(ti, ti.try_number, event))
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.touch()


def _ended_unreported(settings: Settings, ti: Any, try_number: int) -> bool:
    """Whether try ``try_number`` of ``ti`` started and ran no end callback (its process was killed)."""
    def mark(event: str) -> Path:
        return _try_mark(settings, ti.dag_id, ti.run_id, _mark_name(ti, try_number, event))

    return mark("started").exists() and not mark("ended").exists()


KILLED_ERROR = (
    "the task process ended without reporting (killed: out of memory, kill -9, or stopped from outside); "
    "no failure callback ran"
)


class ReviewflowTryStarted(BaseNotifier):
    """``on_execute_callback`` of every reviewflow task: marks the try started, and pages for the
    previous try when that one started and never ended (its process was killed, so nothing paged)."""

    def notify(self, context: Any) -> None:
        settings = load_settings()
        ti = context["ti"]
        _mark(settings, ti, "started")
        previous = ti.try_number - 1
        if previous >= 1 and _ended_unreported(settings, ti, previous):
            title, body, fields = failure_page(
                ti, settings, True, f"Killed: {KILLED_ERROR}", previous, task_log_url(ti, previous)
            )
            send_alert(settings, title, body, context, aws_conn_id=pager_conn_id(settings), fields=fields,
                       once_key=try_key(ti, previous))


class ReviewflowTryEnded(BaseNotifier):
    """``on_success_callback`` and ``on_skipped_callback`` of every reviewflow task: marks the try ended."""

    def notify(self, context: Any) -> None:
        _mark(load_settings(), context["ti"], "ended")


class ReviewflowFailureNotifier(BaseNotifier):
    """``on_failure_callback`` and ``on_retry_callback`` of every reviewflow task: one page per failed try.

    :param will_retry: whether it is the retry callback (the page says Airflow retries the task).
    """

    def __init__(self, will_retry: bool = False) -> None:
        super().__init__()
        self.will_retry = will_retry

    def notify(self, context: Any) -> None:
        settings = load_settings()
        ti = context["ti"]
        _mark(settings, ti, "ended")
        log_url = getattr(ti, "log_url", None) or run_url(ti.dag_id, ti.run_id)
        error = first_line(context.get("exception"))
        title, body, fields = failure_page(ti, settings, self.will_retry, error, ti.try_number, log_url)
        send_alert(settings, title, body, context, aws_conn_id=pager_conn_id(settings), fields=fields,
                   once_key=try_key(ti, ti.try_number))


def unreported_tries(settings: Settings, dag_id: str, run_id: str) -> list[str]:
    """``task try N`` for every try of the run that started and ran no end callback, in name order."""
    folder = _try_mark(settings, dag_id, run_id, "")
    started = sorted(folder.glob("*.started")) if folder.is_dir() else []
    unreported = []
    for mark in started:
        task_id, map_index, try_number, _ = mark.name.rsplit(".", 3)
        if not mark.with_suffix(".ended").exists():
            unreported.append(f"{task_id}{'' if map_index == '-1' else f'[{map_index}]'} try {try_number}")
    return unreported


def page_dag_run_failure(context: Any) -> None:
    """DAG-level ``on_failure_callback``: one page per failed run (task pages carry the errors)."""
    settings = load_settings()
    dag_run = context["dag_run"]
    runbook = section_url(settings.runbook_url, anchor(dag_run.dag_id, "run-failed"))
    killed = unreported_tries(settings, dag_run.dag_id, dag_run.run_id)
    body = "\n".join(
        [
            f"DAG: {dag_run.dag_id}  Run: {dag_run.run_id}: {run_url(dag_run.dag_id, dag_run.run_id)}",
            f"Reason: {context.get('reason') or 'a task failed'}. The failed task's own page has its error.",
            *([f"Ended without reporting (killed: out of memory, kill -9, or stopped from outside): {', '.join(killed)}"]
              if killed else []),
            f"Runbook: {runbook}",
        ]
    )
    send_alert(
        settings, run_failure_title(dag_run.dag_id), body, aws_conn_id=pager_conn_id(settings),
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
    conn_id = await sync_to_async(pager_conn_id)(settings)
    await sync_to_async(send_alert)(settings, title, body, aws_conn_id=conn_id, fields=fields, once_key=once)
