"""The UI in a real browser: headless Chromium (Playwright) on a live Airflow 3.3 stack (scheduler,
dag-processor, triggerer, API server; tests/e2e/conftest.py) and the registry's MLflow UI, as an
on-call engineer uses them, one screenshot per step in .artifacts/browser-test/.

Log in (conftest) → the DAG list → out-of-bounds numbers are brought back within the params' bounds
and a value the schema refuses starts no run → ``reviews_ingest`` triggered from its form (defaults
shown; a generated sample and a lower ``min_rows`` set there) runs to success → the quality gate's
"Quality report" button opens that run's report, with the form's ``min_rows`` → ``reviews_train``
triggered from its form with ``approval_mode=manual`` and a tiny training budget waits for a person →
the model is approved under Required Actions and ``record_approval`` makes it the champion → the MLflow
UI shows that version with the ``champion`` alias → a failure page's log link (a seeded failed run)
leads to the task, which is cleared and rerun by the scheduler.

The tests run in this order, each later one on the runs the earlier ones triggered (``UiStack.runs``).
Checks of what the UI did go through the REST APIs (run conf, the approval answer, task states).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import pytest

from include.registry.base import DEFAULT_MODEL_NAME
from tests.dags.helpers import TINY_TRAINING
from tests.e2e.conftest import UI_TIMEOUT, UiStack

pytest.importorskip("playwright.sync_api", reason="the playwright package is missing: make install (requirements.lock)")
from playwright.sync_api import expect  # noqa: E402

expect.set_options(timeout=UI_TIMEOUT)

APPROVAL_COMMENT = "looks right in the browser"
SAMPLE_ROWS = 2_500  # enough for the training gate's 100 test rows
FORM_MIN_ROWS = 500  # below the default 1000, so the report shows the form's value
# Generous bounds on 2 busy cores (measured: ingest ≈ 1.5 min, training to the approval ≈ 4 min); a
# retry after a transient fault (2 minutes' delay) still fits.
INGEST_TIMEOUT = 600
TRAIN_TIMEOUT = 1200
RERUN_TIMEOUT = 300


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
    """A trigger-form field: the input named ``element_<param>`` (for an enum, its hidden value)."""
    return dialog.locator(f'input[name="element_{name}"]')


def fill(dialog: Any, values: dict[str, Any]) -> None:
    """Type ``values`` into the form's text and number fields."""
    for name, value in values.items():
        field(dialog, name).fill(str(value))
        field(dialog, name).blur()


def choose(page: Any, dialog: Any, name: str, option: str) -> None:
    """Pick ``option`` in the drop-down of the enum param ``name``."""
    dialog.locator(f"#element_{name}").get_by_role("combobox").click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(field(dialog, name)).to_have_value(option)


def trigger(page: Any, stack: UiStack, dialog: Any, dag_id: str) -> dict[str, Any]:
    """Submit the form; the run it created (the UI moves to the run's page)."""
    dialog.get_by_test_id("trigger-dag-submit").click()
    page.wait_for_url(f"**/dags/{dag_id}/runs/**")
    run = stack.dag_run(dag_id, unquote(page.url.split("/runs/", 1)[1].split("/", 1)[0]))
    assert run["triggered_by"] == "ui"
    return run


def defaults_of(stack: UiStack, dag_id: str) -> dict[str, Any]:
    params = stack.request("GET", f"/api/v2/dags/{dag_id}/details")["params"]
    return {name: spec["value"] for name, spec in params.items()}


def test_the_dag_list_shows_every_dag(ui_stack: UiStack, page: Any, shot) -> None:
    page.get_by_role("link", name="Dags").first.click()
    for dag_id in ("reviews_ingest", "reviews_train", "reviews_rollout"):
        expect(page.get_by_role("link", name=dag_id, exact=True)).to_be_visible()
    shot(page, "dag-list")


def test_numbers_out_of_bounds_are_brought_back_within_them(ui_stack: UiStack, page: Any, shot) -> None:
    """The form's number fields take the params' minimum and maximum: a value outside never reaches a run."""
    dialog = open_trigger_form(page, ui_stack, "reviews_train")
    for name, bad, bound in (("epochs", "0", "1"), ("min_macro_f1", "1.5", "1")):
        fill(dialog, {name: bad})
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


def test_ingest_triggered_from_its_form_runs_to_success(ui_stack: UiStack, page: Any, shot) -> None:
    """The form shows the defaults; the values typed over them reach the run, which the scheduler runs
    (the form's "Unpause on trigger" unpauses the DAG)."""
    from include.sample_data import SampleSpec, write_sample

    source = ui_stack.data_root / "samples" / "browser-test.tsv.gz"  # inside the allowed roots (the data root)
    write_sample(source, SampleSpec(rows=SAMPLE_ROWS, seed=21, bad_rows=10))
    dialog = open_trigger_form(page, ui_stack, "reviews_ingest")
    for name, value in {"min_rows": "1000", "max_rejected_share": "0.05", "quality_engine": "auto"}.items():
        expect(field(dialog, name)).to_have_value(value)
    shot(page, "reviews_ingest-form-defaults")
    set_in_form = {"source_uri": str(source), "min_rows": FORM_MIN_ROWS}
    fill(dialog, set_in_form)
    shot(page, "reviews_ingest-form")
    run = trigger(page, ui_stack, dialog, "reviews_ingest")
    assert run["conf"] == defaults_of(ui_stack, "reviews_ingest") | set_in_form
    ui_stack.runs["ingest"] = run["dag_run_id"]
    ui_stack.wait_for_run("reviews_ingest", run["dag_run_id"], INGEST_TIMEOUT)
    page.reload()
    expect(page.get_by_test_id("state-badge").filter(has_text="Success").first).to_be_visible()
    shot(page, "reviews_ingest-succeeded")


def test_the_quality_report_button_opens_the_runs_report(ui_stack: UiStack, page: Any, shot) -> None:
    run_id = ui_stack.run("ingest")
    page.goto(f"{ui_stack.url}/dags/reviews_ingest/runs/{quote(run_id, safe='')}/tasks/quality_gate")
    page.get_by_role("link", name="Details", exact=True).click()
    button = page.get_by_role("link", name="Quality report")
    expect(button).to_be_visible()
    shot(page, "quality-gate")
    button.click()  # same origin as the UI: it opens in this tab
    page.wait_for_url("**/quality-report")
    expect(page.locator("h1")).to_contain_text("Data quality")
    expect(page.get_by_text(f">= {FORM_MIN_ROWS} (param min_rows)")).to_be_visible()
    expect(page.locator(".verdict")).to_have_text("PASSED")
    shot(page, "quality-report")


def test_train_triggered_from_its_form_waits_for_a_person(ui_stack: UiStack, page: Any, shot) -> None:
    """approval_mode=manual and a tiny training budget, set in the form: the run trains, registers and
    then waits in human_approval."""
    ui_stack.run("ingest")  # trains on the snapshot that run published
    dialog = open_trigger_form(page, ui_stack, "reviews_train")
    for name, value in {"epochs": "2", "max_seq_length": "64", "approval_mode": "auto"}.items():
        expect(field(dialog, name)).to_have_value(value)
    shot(page, "reviews_train-form-defaults")
    fill(dialog, TINY_TRAINING)
    choose(page, dialog, "approval_mode", "manual")
    shot(page, "reviews_train-form")
    run = trigger(page, ui_stack, dialog, "reviews_train")
    assert run["conf"] == defaults_of(ui_stack, "reviews_train") | TINY_TRAINING | {"approval_mode": "manual"}
    run_id = ui_stack.runs["train"] = run["dag_run_id"]
    waiting = ui_stack.wait_for(
        lambda: (ui_stack.dag_run("reviews_train", run_id)["state"],
                 ui_stack.task_instance("reviews_train", run_id, "human_approval")["state"]),
        lambda states: states[1] == "awaiting_input" or states[0] in ("success", "failed"),
        TRAIN_TIMEOUT, lambda: ui_stack.explain_run("reviews_train", run_id),
    )
    assert waiting == ("running", "awaiting_input"), ui_stack.explain_run("reviews_train", run_id)
    page.reload()  # the run's page, now showing the task that waits
    shot(page, "reviews_train-awaiting-approval")


def test_a_model_is_approved_under_required_actions(ui_stack: UiStack, page: Any, shot) -> None:
    run_id = ui_stack.run("train")
    page.goto(ui_stack.url)
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Required Actions").click()
    request = page.get_by_role("link", name=f"Approve the new sentiment model? {DEFAULT_MODEL_NAME} v")
    expect(request).to_have_count(1)
    shot(page, "required-actions")
    request.click()
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
    ui_stack.wait_for_run("reviews_train", run_id, TRAIN_TIMEOUT)  # record_approval included
    assert ui_stack.task_states("reviews_train", run_id)["record_approval"] == "success"
    page.goto(f"{ui_stack.url}/dags/reviews_train/runs/{quote(run_id, safe='')}")
    expect(page.get_by_test_id("state-badge").filter(has_text="Success").first).to_be_visible()
    shot(page, "reviews_train-succeeded")


def mlflow_get(stack: UiStack, path: str, **query: str) -> Any:
    with urllib.request.urlopen(f"{stack.mlflow_url}/api/2.0/mlflow/{path}?{urlencode(query)}", timeout=30) as answer:
        return json.load(answer)


def test_the_mlflow_ui_shows_the_approved_version_as_champion(ui_stack: UiStack, page: Any, shot) -> None:
    """The version the train run registered (found by its lineage tag) carries the champion alias on the
    registered model's page of the MLflow UI."""
    run_id = ui_stack.run("train")
    versions = mlflow_get(ui_stack, "model-versions/search", filter=f"name='{DEFAULT_MODEL_NAME}'")["model_versions"]
    [version] = [v for v in versions if {"key": "lineage.airflow_run_id", "value": run_id} in v.get("tags", [])]
    page.goto(f"{ui_stack.mlflow_url}/#/models/{DEFAULT_MODEL_NAME}")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"Version {version['version']}", exact=True))
    expect(row).to_contain_text("@ champion")
    shot(page, "mlflow-champion")


def test_the_failure_pages_log_link_leads_to_a_rerun_of_the_task(ui_stack: UiStack, page: Any, shot) -> None:
    """The seeded run failed (its source does not exist): the page's log link shows the failed try, the
    task is cleared there, and the scheduler runs it again, which fails again and pages for try 2."""
    from include.config import load_settings

    alert_log = load_settings({"REVIEWFLOW_DATA_ROOT": str(ui_stack.data_root)}).alert_log
    run_id = ui_stack.run("failed_ingest")

    def pages() -> list[dict[str, Any]]:
        alerts = map(json.loads, alert_log.read_text().splitlines())
        return [alert for alert in alerts if alert.get("task_id") == "stage_raw" and alert["run_id"] == run_id]

    [alert] = pages()
    log_url = next(line.removeprefix("Log: ") for line in alert["message"].splitlines() if line.startswith("Log: "))
    assert ui_stack.task_instance("reviews_ingest", run_id, "stage_raw")["state"] == "failed"
    page.goto(log_url)
    expect(page.get_by_test_id("state-badge").filter(has_text="Failed").first).to_be_visible()
    shot(page, "failed-task-log")
    page.keyboard.press("Shift+C")  # the page's "Clear Task Instance" button (its tooltip names the key)
    expect(page.get_by_role("dialog")).to_contain_text("Clear Task Instance")
    shot(page, "clear-dialog")
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    rerun = ui_stack.wait_for(
        lambda: ui_stack.task_instance("reviews_ingest", run_id, "stage_raw"),
        lambda ti: ti["try_number"] == 2 and ti["state"] in ("success", "failed"),
        RERUN_TIMEOUT, lambda: ui_stack.explain_run("reviews_ingest", run_id),
    )
    assert rerun["state"] == "failed", "the source is still absent"
    assert [alert["try_number"] for alert in ui_stack.wait_for(pages, lambda found: len(found) == 2)] == [1, 2]
    page.goto(f"{ui_stack.url}/dags/reviews_ingest/runs/{quote(run_id, safe='')}/tasks/stage_raw?try_number=2")
    expect(page.get_by_test_id("state-badge").filter(has_text="Failed").first).to_be_visible()
    shot(page, "rerun-failed")
