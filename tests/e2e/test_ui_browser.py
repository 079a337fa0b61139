"""The UI in a real browser: headless Chromium (Playwright) on Airflow 3.3's API server, as an
on-call engineer uses it, one screenshot per step in .artifacts/browser-test/.

Log in (conftest) → the DAG list → each trigger form shows its defaults and triggers a run with
them → bad values are refused on the form and no run starts → the quality gate's "Quality report"
button opens the run's report → a model waiting for approval is approved under Required Actions →
the failure page's log link leads to the failed task, which is cleared for a rerun.

Checks of what the UI did go through the REST API (run conf, the approval answer, task state).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from tests.e2e.conftest import UI_TIMEOUT, UiStack

pytest.importorskip("playwright.sync_api", reason="the playwright package is missing: make install (requirements.lock)")
from playwright.sync_api import expect  # noqa: E402

expect.set_options(timeout=UI_TIMEOUT)

APPROVAL_COMMENT = "looks right in the browser"


@pytest.fixture(scope="module")
def shot(artefacts: Path):
    """``shot(page, name)``: a numbered full-page screenshot of the current step."""
    taken: list[str] = []

    def take(page: Any, name: str) -> None:
        taken.append(f"{len(taken) + 1:02d}-{name}.png")
        page.screenshot(path=str(artefacts / taken[-1]))

    yield take
    print(f"\nbrowser test: {len(taken)} screenshots in {artefacts}")


def open_trigger_form(page: Any, stack: UiStack, dag_id: str) -> Any:
    """The trigger dialog of ``dag_id``, opened from its DAG page."""
    page.goto(f"{stack.url}/dags/{dag_id}")
    page.get_by_test_id("trigger-dag-button").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_test_id("trigger-dag-submit")).to_be_visible()
    return dialog


def field(dialog: Any, name: str) -> Any:
    """A trigger-form field: the input named ``element_<param>``."""
    return dialog.locator(f'input[name="element_{name}"]')


def test_the_dag_list_shows_every_dag(ui_stack: UiStack, page: Any, shot) -> None:
    page.get_by_role("link", name="Dags").first.click()
    for dag_id in ("reviews_ingest", "reviews_train", "reviews_rollout"):
        expect(page.get_by_role("link", name=dag_id, exact=True)).to_be_visible()
    shot(page, "dag-list")


@pytest.mark.parametrize(("dag_id", "shown"), [
    ("reviews_ingest", {"min_rows": "1000", "max_rejected_share": "0.05", "quality_engine": "auto"}),
    ("reviews_train", {"epochs": "2", "max_seq_length": "64", "approval_mode": "auto"}),
])
def test_a_trigger_form_shows_the_defaults_and_triggers_with_them(
    ui_stack: UiStack, page: Any, shot, dag_id: str, shown: dict[str, str]
) -> None:
    defaults = {name: spec["value"] for name, spec in ui_stack.request("GET", f"/api/v2/dags/{dag_id}/details")["params"].items()}
    dialog = open_trigger_form(page, ui_stack, dag_id)
    for name, value in shown.items():
        expect(field(dialog, name)).to_have_value(value)
    shot(page, f"{dag_id}-form-defaults")
    dialog.get_by_test_id("trigger-dag-submit").click()
    page.wait_for_url(f"**/dags/{dag_id}/runs/**")
    run_id = unquote(page.url.split("/runs/", 1)[1].split("/", 1)[0])
    run = ui_stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
    assert run["conf"] == defaults and run["triggered_by"] == "ui"
    shot(page, f"{dag_id}-triggered")


def test_numbers_out_of_bounds_are_brought_back_within_them(ui_stack: UiStack, page: Any, shot) -> None:
    """The form's number fields take the params' minimum and maximum: a value outside never reaches a run."""
    dialog = open_trigger_form(page, ui_stack, "reviews_train")
    for name, bad, bound in (("epochs", "0", "1"), ("min_macro_f1", "1.5", "1")):
        field(dialog, name).fill(bad)
        field(dialog, name).blur()
        expect(field(dialog, name)).to_have_value(bound)
    shot(page, "reviews_train-form-bounded")
    page.keyboard.press("Escape")


def test_a_value_the_schema_refuses_triggers_no_run(ui_stack: UiStack, page: Any, shot) -> None:
    """The API server validates the conf against the params' schema (here source_uri's pattern)."""
    before = len(ui_stack.dag_runs("reviews_ingest"))
    dialog = open_trigger_form(page, ui_stack, "reviews_ingest")
    field(dialog, "source_uri").fill("/etc/passwd")
    dialog.get_by_test_id("trigger-dag-submit").click()
    expect(page.get_by_text("Failed to Trigger Dag").first).to_be_visible()
    shot(page, "reviews_ingest-form-refused")
    page.keyboard.press("Escape")
    assert len(ui_stack.dag_runs("reviews_ingest")) == before, "reviews_ingest was triggered with source_uri=/etc/passwd"


def test_the_quality_report_button_opens_the_runs_report(ui_stack: UiStack, page: Any, shot) -> None:
    run_id = ui_stack.runs["reported_ingest"]
    page.goto(f"{ui_stack.url}/dags/reviews_ingest/runs/{quote(run_id, safe='')}/tasks/quality_gate")
    page.get_by_role("link", name="Details", exact=True).click()
    button = page.get_by_role("link", name="Quality report")
    expect(button).to_be_visible()
    shot(page, "quality-gate")
    button.click()  # same origin as the UI: it opens in this tab
    page.wait_for_url("**/quality-report")
    expect(page.locator("h1")).to_contain_text("Data quality")
    expect(page.get_by_text(">= 100 (param min_rows)")).to_be_visible()
    expect(page.locator(".verdict")).to_have_text("PASSED")
    shot(page, "quality-report")


def test_a_model_is_approved_under_required_actions(ui_stack: UiStack, page: Any, shot) -> None:
    run_id = ui_stack.runs["awaiting_approval"]
    page.goto(ui_stack.url)
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Required Actions").click()
    request = page.get_by_role("link", name="Approve the new sentiment model?")
    expect(request.first).to_be_visible()
    shot(page, "required-actions")
    request.first.click()
    page.locator('[name="element_comment"]').fill(APPROVAL_COMMENT)
    shot(page, "approval-request")
    page.get_by_test_id("hitl-option-Approve").click()
    answer = ui_stack.wait_for(
        lambda: ui_stack.request("GET", f"/api/v2/dags/reviews_train/dagRuns/{quote(run_id, safe='')}/taskInstances/human_approval/-1/hitlDetails"),
        lambda detail: detail["response_received"],
    )
    assert answer["chosen_options"] == ["Approve"] and answer["params_input"] == {"comment": APPROVAL_COMMENT}
    assert answer["responded_by_user"]["name"] == "admin"
    shot(page, "approved")


def test_the_failure_pages_log_link_leads_to_a_rerun_of_the_task(ui_stack: UiStack, page: Any, shot) -> None:
    from include.config import load_settings

    alert_log = load_settings({"REVIEWFLOW_DATA_ROOT": str(ui_stack.data_root)}).alert_log
    alert = next(alert for alert in map(json.loads, alert_log.read_text().splitlines()) if alert.get("task_id") == "stage_raw")
    log_url = next(line.removeprefix("Log: ") for line in alert["message"].splitlines() if line.startswith("Log: "))
    run_id = ui_stack.runs["failed_ingest"]
    assert ui_stack.task_instance("reviews_ingest", run_id, "stage_raw")["state"] == "failed"
    page.goto(log_url)
    expect(page.get_by_test_id("state-badge").filter(has_text="Failed").first).to_be_visible()
    shot(page, "failed-task-log")
    page.keyboard.press("Shift+C")  # the page's "Clear Task Instance" button (its tooltip names the key)
    expect(page.get_by_role("dialog")).to_contain_text("Clear Task Instance")
    shot(page, "clear-dialog")
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    ui_stack.wait_for(lambda: ui_stack.task_instance("reviews_ingest", run_id, "stage_raw"), lambda ti: ti["state"] is None)
    shot(page, "cleared")
