"""What every reviewflow DAG shares: owner, retries, timeouts, paging, deadlines, docs, and the assets that chain them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import (
    DAG,
    Asset,
    AssetAlias,
    AsyncCallback,
    DeadlineAlert,
    DeadlineReference,
    ExceptionRetryPolicy,
    Param,
    RetryAction,
    RetryRule,
)

from include.caching import DEFAULT_EXPIRE_AFTER
from include.config import load_settings
from include.errors import BadInputError
from include.ingestion.schema import CATEGORY_MAX_LENGTH, CATEGORY_PATTERN
from include.runbook import dag_runbook, entry_markdown, task_runbook
from reviewflow.notifiers import (
    ReviewflowFailureNotifier,
    ReviewflowTryEnded,
    ReviewflowTryStarted,
    page_dag_run_failure,
    page_deadline_missed,
)
from reviewflow.settings import AWS_CONN_ID_TEMPLATE

# A verdict about the input (missing file, no rows in the requested categories, too many
# rejected rows, a bad parameter or setting) fails the task at once: a retry would give the
# same verdict minutes later. Every other error (network, throttling, a lost worker) is retried.
# Verdicts about the data or the model (an Error-level quality check, a rejected model) raise
# AirflowFailException, which Airflow never retries.
FAIL_ON_BAD_INPUT = ExceptionRetryPolicy(
    rules=[
        RetryRule(exception=BadInputError, action=RetryAction.FAIL, reason="the input is wrong; retrying cannot fix it")
    ]
)

# The items of a ``categories`` param: a product category name as the data has them; quotes,
# commas and semicolons are refused on the trigger form, before any task runs.
CATEGORY_ITEMS: dict[str, Any] = {
    "type": "string", "minLength": 1, "maxLength": CATEGORY_MAX_LENGTH, "pattern": CATEGORY_PATTERN,
}
CATEGORY_RULE = f"letters, digits, spaces and _ & . - (at most {CATEGORY_MAX_LENGTH} characters)"

# The trigger-form params of the DAGs with cached steps (include/caching.py), and how their operators take them.
CACHE_PARAMS: dict[str, Param] = {
    "force": Param(False, type="boolean", title="Recompute cached steps",
                   description="Run every cached step even when an output with the same fingerprint is committed."),
    "cache_expire_after": Param(
        DEFAULT_EXPIRE_AFTER,
        type=["null", "string"],
        pattern=r"^P(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?)?$",
        title="Cache expiry",
        description="ISO 8601 duration (P30D, PT12H, P1DT6H) after which a committed output is computed again; empty: never.",
    ),
}
CACHE_ARGS = {"force": "{{ params.force }}", "cache_expire_after": "{{ params.cache_expire_after }}"}

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "reviewflow",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=20),
    "retry_policy": FAIL_ON_BAD_INPUT,
    # Tasks that read or write more than a file or two say how long their work may take.
    "execution_timeout": dt.timedelta(minutes=20),
    # One page per failed try: the retry callback for tries Airflow retries, the failure callback for the last.
    "on_retry_callback": ReviewflowFailureNotifier(will_retry=True),
    "on_failure_callback": ReviewflowFailureNotifier(),
    # A killed try runs no callback: its start and end marks let the next try (or the failed run) page for it.
    "on_execute_callback": ReviewflowTryStarted(),
    "on_success_callback": ReviewflowTryEnded(),
    "on_skipped_callback": ReviewflowTryEnded(),
    # Every AWS call of every task goes through the connection the settings name (reviewflow_aws_conn_id),
    # rendered when the task runs; an operator without aws_conn_id ignores it.
    "aws_conn_id": AWS_CONN_ID_TEMPLATE,
}


def on_call(dag_id: str) -> dict[str, Any]:
    """The DAG arguments that make a run watchable: its runbook as ``doc_md``, a ``dagrun_timeout``, a
    deadline alert that pages while a late run is still going, and a page when a run fails."""
    entry = dag_runbook(dag_id)
    deadline = DeadlineAlert(
        # Queued, not logical date: asset-triggered and manual runs may have no logical date.
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=entry.deadline,
        # Runs on the triggerer, which every deployment has (executors need not run callbacks).
        callback=AsyncCallback(page_deadline_missed),
        name=f"{dag_id} late",
    )
    return {
        "doc_md": entry_markdown(entry),
        "dagrun_timeout": entry.run_timeout,
        "deadline": deadline if load_settings().deadline_alerts else None,
        "on_failure_callback": page_dag_run_failure,
    }


def document_tasks(dag: DAG) -> None:
    """Give every task of ``dag`` its runbook entry as ``doc_md`` (a KeyError names a task without one)."""
    for task in dag.tasks:
        task.doc_md = entry_markdown(task_runbook(dag.dag_id, task.task_id))


# Assets are named, not located: each event's ``extra`` carries the snapshot's URI, so the
# same DAGs run against any data root (a laptop folder, a test's tmp dir, S3).
CURATED_REVIEWS = Asset(name="reviewflow_curated_reviews")
# The rollout DAG schedules on the approved model; record_approval emits it through the alias,
# and only for a challenger.
APPROVED_MODEL = Asset(name="reviewflow_approved_model")
APPROVED_MODEL_EVENTS = AssetAlias(name="reviewflow_approved_model_events")
