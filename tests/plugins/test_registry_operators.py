"""Registry operators on the local backend: register, automatic gate, human approval, recording and the asset."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.config import load_settings
from include.registry.base import APPROVED, CHALLENGER, CHAMPION, PENDING, REJECTED
from include.registry.lineage import LINEAGE_FIELDS
from include.registry.mlflow_registry import MlflowModelRegistry
from reviewflow.operators import approval, registration
from reviewflow.run_summary import run_summary_uri
from tests.conftest import AWS_CONN_ID, form_requires
from tests.plugins.registry_steps import SNAPSHOT, answer, ask, context, gate, metrics, record, register, registry_section

_names = itertools.count()


@pytest.fixture(scope="module")
def module_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry-ops")
    MlflowModelRegistry.for_data_root(root).client.search_experiments()  # create the database once per module
    (root / "reports" / SNAPSHOT).mkdir(parents=True)
    (root / "reports" / SNAPSHOT / "summary.json").write_text(json.dumps(
        {"run_key": SNAPSHOT, "quality": {"report_json": f"{root}/reports/{SNAPSHOT}/quality/report.json"}}
    ))
    return root


@pytest.fixture
def root(module_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REVIEWFLOW_BACKEND", "local")
    monkeypatch.setenv("REVIEWFLOW_DATA_ROOT", str(module_root))
    return module_root


@pytest.fixture
def model_name() -> str:
    return f"ops-model-{next(_names)}"


def trained_run(root: Path, key: str, f1: float, champion_f1: float | None) -> None:
    """What build_features, train and evaluate leave behind for run ``key``: model folder, metrics.json, run summary."""
    models = root / "models" / key
    (models / "model").mkdir(parents=True, exist_ok=True)
    (models / "model" / "config.json").write_text(json.dumps({"run": key}))
    (models / "model" / "model.safetensors").write_bytes(key.encode())
    (models / "metrics.json").write_text(json.dumps({"hyperparameters": {"epochs": 2, "seed": 42, "learning_rate": 1e-4}}))
    champion = metrics(champion_f1) if champion_f1 is not None else None
    evaluation = {
        "challenger": metrics(f1), "champion": champion,
        "deltas": {"macro_f1": f1 - champion_f1, "accuracy": f1 - champion_f1,
                   "per_class_f1": {c: f1 - champion_f1 for c in ("negative", "neutral", "positive")},
                   "macro_f1_ci95": [f1 - champion_f1 - 0.01, f1 - champion_f1 + 0.01]} if champion else None,
        "evaluation_uri": str(models / "evaluation.json"), "challenger_macro_f1": f1, "champion_macro_f1": champion_f1,
        "delta_macro_f1": f1 - champion_f1 if champion else None, "test_rows": 200,
        "delta_macro_f1_ci95": [f1 - champion_f1 - 0.01, f1 - champion_f1 + 0.01] if champion else None,
    }
    summary = {
        "run_key": key,
        "features": {"manifest_uri": str(root / "features" / key / "manifest.json")},
        "training": {"model_uri": str(models / "model"), "metrics_uri": str(models / "metrics.json"),
                     "plots_uri": str(models / "plots"), "validation_macro_f1": f1},
        "evaluation": evaluation,
    }
    uri = Path(run_summary_uri(load_settings(), key))
    uri.parent.mkdir(parents=True, exist_ok=True)
    uri.write_text(json.dumps(summary))


def test_register_is_idempotent_and_records_lineage(root: Path, model_name: str) -> None:
    trained_run(root, "run-reg", 0.7, None)
    first = register("run-reg", model_name)
    assert register("run-reg", model_name) == first
    assert (first["version"], first["status"]) == ("1", PENDING)
    version = MlflowModelRegistry.for_data_root(root, model_name).get_version("1")
    assert set(version.lineage) == set(LINEAGE_FIELDS) and all(version.lineage.values())
    assert version.lineage["quality_report"] == f"{root}/reports/{SNAPSHOT}/quality/report.json"
    assert version.lineage["source_snapshot"] == SNAPSHOT and version.lineage["airflow_run_id"] == "run-reg"
    assert json.loads(version.lineage["training_params"])["epochs"] == 2
    assert version.metrics["test_macro_f1"] == pytest.approx(0.7) and "champion_test_macro_f1" not in version.metrics
    assert registry_section("run-reg")["version"] == "1"


def test_auto_first_model_becomes_champion_then_a_challenger_emits_the_asset(root: Path, model_name: str) -> None:
    trained_run(root, "run-1", 0.70, None)
    register("run-1", model_name)
    assert gate("run-1", model_name) == "record_approval"
    result, events = record("run-1", model_name)
    assert result["role"] == CHAMPION and events == []  # the first model is not rolled out against anything
    registry = MlflowModelRegistry.for_data_root(root, model_name)
    champion = registry.champion()
    assert (champion.version, champion.status, champion.approved_by) == ("1", APPROVED, "reviewflow-gate")
    assert "no champion" in champion.approval_comment
    assert record("run-1", model_name)[0]["role"] == CHAMPION  # a retry changes nothing

    trained_run(root, "run-2", 0.69, 0.70)  # a little worse, within the tolerance
    register("run-2", model_name)
    assert gate("run-2", model_name) == "record_approval"
    result, events = record("run-2", model_name)
    assert result["role"] == CHALLENGER and registry.version_for_alias(CHALLENGER).version == "2"
    assert registry.champion().version == "1"
    [event] = events
    assert event.dest_asset_key.name == approval.APPROVED_MODEL.name
    assert event.extra["version"] == "2" and event.extra["champion_version"] == "1"
    assert event.extra["model_uri"] == registry.get_version("2").model_uri
    section = registry_section("run-2")
    assert section["role"] == CHALLENGER and section["status"] == APPROVED and section["gate"]["passed"] is True


def test_register_and_the_gate_report_the_evaluated_model_to_its_version_as_lineage(root: Path, model_name: str) -> None:
    trained_run(root, "run-lin", 0.70, None)
    operators = [
        registration.RegisterModelOperator(task_id="register", snapshot=SNAPSHOT, model_name=model_name,
                                           curated_uri=f"/d/curated/reviews/snapshot={SNAPSHOT}", aws_conn_id=AWS_CONN_ID),
        approval.ApprovalGateOperator(task_id="approval_gate", model_name=model_name, aws_conn_id=AWS_CONN_ID),
    ]
    operators[0].execute(context("run-lin"))
    operators[1].choose_branch(context("run-lin"))
    evaluation = ("file", str(root / "models" / "run-lin" / "evaluation.json"))
    for operator in operators:
        lineage = operator.get_openlineage_facets_on_complete(None)
        assert evaluation in [(d.namespace, d.name) for d in lineage.inputs], operator.task_id
        assert [(d.namespace, d.name) for d in lineage.outputs] == [("mlflow", f"{model_name}/versions/1")]


def test_gate_failure_rejects_and_nothing_is_recorded(root: Path, model_name: str) -> None:
    trained_run(root, "run-c", 0.80, None)
    register("run-c", model_name)
    gate("run-c", model_name)
    record("run-c", model_name)
    trained_run(root, "run-d", 0.70, 0.80)  # 0.10 worse than the champion
    register("run-d", model_name)
    with pytest.raises(AirflowFailException, match="worse than the champion .*delta -0.1000"):
        gate("run-d", model_name)
    version = MlflowModelRegistry.for_data_root(root, model_name).get_version("2")
    assert (version.status, version.approved_by) == (REJECTED, "reviewflow-gate")
    assert "more than the tolerated 0.0200" in version.approval_comment
    assert registry_section("run-d")["gate"]["passed"] is False
    # Even if someone ran record_approval by hand, a rejected version is never aliased or emitted.
    with pytest.raises(AirflowFailException, match="has not passed the approval gate"):
        record("run-d", model_name)
    assert version.aliases == () and MlflowModelRegistry.for_data_root(root, model_name).version_for_alias(CHALLENGER) is None


def test_too_few_test_rows_are_insufficient_evidence(root: Path, model_name: str) -> None:
    trained_run(root, "run-few", 0.90, None)
    register("run-few", model_name)
    operator = approval.ApprovalGateOperator(
        task_id="approval_gate", min_test_rows=500, model_name=model_name, aws_conn_id=AWS_CONN_ID
    )
    with pytest.raises(AirflowFailException, match="insufficient evidence: 200 test rows"):
        operator.choose_branch(context("run-few"))
    assert registry_section("run-few")["gate"]["min_test_rows"] == 500


def test_gate_needs_the_champion_scored_on_the_same_split(root: Path, model_name: str) -> None:
    trained_run(root, "run-e", 0.80, None)
    register("run-e", model_name)
    gate("run-e", model_name)
    record("run-e", model_name)
    trained_run(root, "run-f", 0.90, None)  # evaluate ran before the champion existed
    register("run-f", model_name)
    with pytest.raises(AirflowFailException, match="evaluate scored no champion"):
        gate("run-f", model_name)
    with pytest.raises(AirflowFailException, match="approval_mode must be one of"):
        gate("run-f", model_name, mode="sometimes")


def awaiting_human(root: Path, key: str, model_name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A trained, registered run whose gate passed in manual mode, waiting for its reviewer: the HITL request."""
    trained_run(root, key, 0.70, None)
    register(key, model_name)
    assert gate(key, model_name, mode="manual") == "human_approval"
    return ask(key, model_name, monkeypatch)


def test_manual_approve_records_the_human_and_makes_a_challenger(
    root: Path, model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = awaiting_human(root, "run-g", model_name, monkeypatch)
    assert request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
    assert f"{model_name} v1" in request["subject"] and "| macro_f1 | 0.7000 | — | — |" in request["body"]
    assert f"{root}/reports/{SNAPSHOT}/quality/report.json" in request["body"]
    assert request["body"].count("No answer") == 1 and "No answer within 2 h rejects the model." in request["body"]
    with pytest.raises(AirflowFailException, match="is PendingManualApproval"):
        record("run-g", model_name, mode="manual")  # nobody answered yet
    answered = answer("run-g", model_name, chosen_options=["Approve"], responded_by_user={"id": "1", "name": "alice"},
                      params_input={"comment": "better on neutral"})
    assert answered["chosen_options"] == ["Approve"]
    result, events = record("run-g", model_name, mode="manual")
    version = MlflowModelRegistry.for_data_root(root, model_name).get_version("1")
    assert (version.status, version.approved_by, version.approval_comment) == (APPROVED, "alice", "better on neutral")
    assert result["role"] == CHAMPION and events == []


def test_comment_is_optional_on_the_form_and_in_the_rest_api(
    root: Path, model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    comment = awaiting_human(root, "run-c", model_name, monkeypatch)["params"]["comment"]  # the form's field
    assert not form_requires(comment) and comment["value"] is None
    # The form sends an emptied field as null; a REST client may leave the field out.
    for params_input in ({"comment": None}, {}):
        answer("run-c", model_name, chosen_options=["Approve"], responded_by_user={"id": "1", "name": "alice"},
                params_input=params_input)
        version = MlflowModelRegistry.for_data_root(root, model_name).get_version("1")
        assert (version.status, version.approved_by, version.approval_comment) == (APPROVED, "alice", "")


def test_manual_reject_and_timeout_never_reach_the_rollout(
    root: Path, model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    awaiting_human(root, "run-h", model_name, monkeypatch)
    answer("run-h", model_name, chosen_options=["Reject"], responded_by_user={"id": "2", "name": "bob"},
            params_input={"comment": "too few neutral reviews"})
    registry = MlflowModelRegistry.for_data_root(root, model_name)
    version = registry.get_version("1")
    assert (version.status, version.approved_by, version.approval_comment) == (REJECTED, "bob", "too few neutral reviews")
    with pytest.raises(AirflowFailException, match="is Rejected"):
        record("run-h", model_name, mode="manual")
    assert registry.champion() is None and registry.version_for_alias(CHALLENGER) is None

    trained_run(root, "run-i", 0.72, None)
    register("run-i", model_name)
    gate("run-i", model_name, mode="manual")
    # The scheduler's timeout sweep answers with the defaults (Reject) and no user.
    answer("run-i", model_name, chosen_options=["Reject"], responded_by_user=None, timedout=True)
    version = registry.get_version("2")
    assert (version.status, version.approved_by) == (REJECTED, "timeout")
    assert registry_section("run-i")["status"] == REJECTED
