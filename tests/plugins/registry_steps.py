"""The registry tasks as the registry operator tests (local and aws) run them, one operator each, on a run key."""

from __future__ import annotations

import datetime as dt
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskAwaitingInput

from include.config import load_settings
from reviewflow.operators import approval, registration
from reviewflow.run_summary import run_summary_uri
from tests.conftest import AWS_CONN_ID, task_context

SNAPSHOT = "manual__snap"


def metrics(f1: float) -> dict[str, Any]:
    return {"rows": 90, "macro_f1": f1, "accuracy": f1 + 0.05, "per_class": {c: {"f1": f1} for c in ("negative", "neutral", "positive")}}


context = partial(task_context, "reviews_train", "register")  # context(run key)


def registry_section(key: str) -> dict[str, Any]:
    return json.loads(Path(run_summary_uri(load_settings(), key)).read_text())["registry"]


def register(key: str, model_name: str) -> dict[str, Any]:
    return registration.RegisterModelOperator(
        task_id="register", snapshot=SNAPSHOT, curated_uri=f"/d/curated/reviews/snapshot={SNAPSHOT}", model_name=model_name,
        aws_conn_id=AWS_CONN_ID,
    ).execute(context(key))


def gate(key: str, model_name: str, mode: str = "auto", min_f1: float = 0.5, drop: float = 0.02) -> Any:
    return approval.ApprovalGateOperator(
        task_id="approval_gate", approval_mode=mode, min_macro_f1=min_f1, max_f1_drop=drop, model_name=model_name,
        aws_conn_id=AWS_CONN_ID,
    ).choose_branch(context(key))


def record(key: str, model_name: str, mode: str = "auto") -> tuple[dict[str, Any], list[Any]]:
    ctx = context(key)
    result = approval.RecordApprovalOperator(
        task_id="record_approval", approval_mode=mode, model_name=model_name, aws_conn_id=AWS_CONN_ID
    ).execute(ctx)
    return result, ctx["outlet_events"][approval.APPROVED_MODEL_EVENTS].asset_alias_events


def ask(key: str, model_name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run human_approval's execute up to the wait; return what it wrote as the HITL request."""
    from airflow.providers.standard.operators import hitl

    request: dict[str, Any] = {}
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kwargs: request.update(kwargs))
    operator = approval.HumanApprovalOperator(
        task_id="human_approval", response_timeout_hours=2, model_name=model_name, aws_conn_id=AWS_CONN_ID
    )
    with pytest.raises(TaskAwaitingInput) as waiting:
        operator.execute(context(key))
    assert waiting.value.timeout == dt.timedelta(hours=2)
    return request


def answer(key: str, model_name: str, **event: Any) -> Any:
    event = {"params_input": {}, "responded_at": dt.datetime.now(dt.UTC), "timedout": False, **event}
    operator = approval.HumanApprovalOperator(task_id="human_approval", model_name=model_name, aws_conn_id=AWS_CONN_ID)
    return operator.execute_complete(context(key), event)
