"""The approval of this run's registered model version: the automatic gate, a human if wanted, the record.

Wiring in ``reviews_train`` after ``register`` (:mod:`reviewflow.operators.registration`)::

    register >> approval_gate >> [human_approval, record_approval]
    human_approval >> record_approval

* ``approval_gate`` (:class:`ApprovalGateOperator`, a branch): the automatic gate on the run
  summary's ``evaluation`` section.  A failure marks the version ``Rejected`` with the reason and
  fails the task without retry (nothing downstream runs).  Otherwise it follows
  ``human_approval`` (``approval_mode=manual``) or ``record_approval`` (``auto``).
* ``human_approval`` (:class:`HumanApprovalOperator`, the standard provider's ``ApprovalOperator``):
  waits in ``awaiting_input``; the request shows the metric comparison and report links; no answer
  before the timeout means ``Reject``.  It writes the decision, approver and comment to the registry;
  on ``Reject`` the operator skips ``record_approval``, so a rejected model never reaches the rollout.
* ``record_approval`` (:class:`RecordApprovalOperator`): ``auto`` approves as ``reviewflow-gate``;
  ``manual`` requires the human's ``Approved``.  The first model ever becomes ``champion``; a later
  one becomes ``challenger`` and emits the ``reviewflow_approved_model`` asset for the rollout.

The registry comes from :func:`reviewflow.backends.registry_for`, so the same code records
decisions in MLflow (version tags, aliases) or in SageMaker (``UpdateModelPackage``: approval status,
``ApprovalDescription`` ``"<approver>: <comment>"``; aliases as package metadata, see
:mod:`include.registry.sagemaker_registry`).  Every task keeps the run summary's ``registry`` section up to date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import AirflowFailException

from include.config import load_settings
from include.lineage_datasets import REGISTRY_NAMESPACES, model_version_dataset, storage_dataset
from include.registry.approval import (
    GATE_APPROVER,
    TIMEOUT_APPROVER,
    approval_body,
    decision_from_response,
    gate_decision,
)
from include.registry.base import APPROVED, CHALLENGER, CHAMPION, DEFAULT_MODEL_NAME, PENDING, REJECTED
from include.registry.run_summary import registry_section, require_summary, summary_section
from reviewflow.backends import registry_for
from reviewflow.dag_defaults import APPROVED_MODEL, APPROVED_MODEL_EVENTS
from reviewflow.operators.base import AWS_TEMPLATE_FIELDS, AwsConnectedOperator
from reviewflow.run_summary import read_run_summary, run_summary_uri, update_run_summary
from reviewflow.runs import run_key

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.config import Settings
    from include.registry.base import ModelRegistry, ModelVersion

APPROVAL_MODES = ("auto", "manual")


def _check_mode(mode: str) -> str:
    if mode not in APPROVAL_MODES:
        raise AirflowFailException(f"approval_mode must be one of {', '.join(APPROVAL_MODES)}, got {mode!r}")
    return mode


class _RegistryTask(AwsConnectedOperator):
    """The registry and this run's registered version, for the tasks after ``register``."""

    model_name: str

    def run_version(self, context: Context) -> tuple[Settings, str, dict[str, Any], ModelRegistry, ModelVersion]:
        settings = load_settings()
        key = run_key(context)
        summary_uri = run_summary_uri(settings, key)
        summary = dict(require_summary(read_run_summary(settings, key, **self.aws_connection), summary_uri, key))
        registered = summary_section(summary, "registry", summary_uri, f"run the register task of run {key} first")
        registry = registry_for(settings, self.model_name, **self.aws_connection)
        return settings, key, summary, registry, registry.get_version(registered["version"])

    def evaluation(self, settings: Settings, key: str, summary: dict[str, Any]) -> dict[str, Any]:
        """The run summary's ``evaluation`` section."""
        hint = f"run the evaluate task of run {key} first"
        return dict(summary_section(summary, "evaluation", run_summary_uri(settings, key), hint))

    def publish(
        self, settings: Settings, key: str, summary: dict[str, Any], version: ModelVersion, **extra: Any
    ) -> dict[str, Any]:
        """Write the version's state (plus ``extra``) into the run summary's ``registry`` section; the
        evaluation → the version (whose approval the task sets) is the task's lineage."""
        section = registry_section(summary, version.to_dict(), **extra)
        update_run_summary(settings, key, "registry", section, **self.aws_connection)
        evaluation = (summary.get("evaluation") or {}).get("evaluation_uri")
        self.report_lineage(
            [storage_dataset(evaluation)] if evaluation else [],
            [model_version_dataset(REGISTRY_NAMESPACES[settings.backend], version.name, version.version)],
        )
        return section


class ApprovalGateOperator(_RegistryTask, BaseBranchOperator):
    """The automatic gate; on success branch to the human (``manual``) or straight to ``record_approval`` (``auto``).

    Passes when the test split has at least ``min_test_rows`` rows, the challenger's test macro-F1 is
    at least ``min_macro_f1``, and the paired bootstrap 95 % interval of its macro-F1 change against
    the champion on the same test rows rules out a drop of more than ``max_f1_drop`` (the run
    summary's ``evaluation`` section; :func:`~include.registry.approval.gate_decision`).  Too little
    evidence is a rejection ("insufficient evidence: N test rows").  A failure marks the version
    ``Rejected`` with the reason and fails without retry.

    :param approval_mode: ``auto`` or ``manual`` (templated).
    :param min_macro_f1: minimum challenger test macro-F1 (templated).
    :param max_f1_drop: tolerated macro-F1 drop below the champion (templated).
    :param min_test_rows: fewest test rows the gate decides on (templated).
    :param human_task_id: the task asking a human (followed in ``manual`` mode).
    :param record_task_id: the task recording the approval (followed in ``auto`` mode).
    :param model_name: registered model / model package group (templated).
    :param aws_conn_id: the connection of the registry and the run summary on ``aws`` (templated).
    :param region_name: their region; ``None``: the connection's (templated).
    """

    template_fields = (*AWS_TEMPLATE_FIELDS, "approval_mode", "min_macro_f1", "max_f1_drop", "min_test_rows", "model_name")
    ui_color = "#e0d4f0"

    def __init__(
        self,
        *,
        approval_mode: str = "auto",
        min_macro_f1: float = 0.5,
        max_f1_drop: float = 0.0,
        min_test_rows: int = 100,
        human_task_id: str = "human_approval",
        record_task_id: str = "record_approval",
        model_name: str = DEFAULT_MODEL_NAME,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.approval_mode = approval_mode
        self.min_macro_f1 = min_macro_f1
        self.max_f1_drop = max_f1_drop
        self.min_test_rows = min_test_rows
        self.human_task_id = human_task_id
        self.record_task_id = record_task_id
        self.model_name = model_name

    def choose_branch(self, context: Context) -> str | Iterable[str] | None:
        mode = _check_mode(self.approval_mode)
        settings, key, summary, registry, version = self.run_version(context)
        evaluation = self.evaluation(settings, key, summary)
        if version.run_key != key and version.status != PENDING:
            return self.decided_earlier(settings, key, summary, version, mode)
        champion = registry.champion()
        if champion is not None and champion.version != version.version and not evaluation.get("champion"):
            raise AirflowFailException(
                f"the registry's champion is version {champion.version} but evaluate scored no champion: "
                f"clear evaluate of run {key} so both are scored on the same test split"
            )
        try:
            decision = gate_decision(
                evaluation["challenger_macro_f1"], evaluation.get("champion_macro_f1"),
                self.min_macro_f1, self.max_f1_drop,
                test_rows=int(evaluation["test_rows"]), min_test_rows=self.min_test_rows,
                delta_ci95=(evaluation.get("deltas") or {}).get("macro_f1_ci95"),
            )
        except ValueError as error:
            raise AirflowFailException(f"approval gate of {version.name} version {version.version}: {error}") from error
        gate = {"passed": decision.passed, "reason": decision.reason, "min_macro_f1": self.min_macro_f1,
                "max_f1_drop": self.max_f1_drop, "min_test_rows": self.min_test_rows, "approval_mode": mode}
        if not decision.passed:
            version = registry.set_approval(version.version, REJECTED, GATE_APPROVER, decision.reason)
            self.publish(settings, key, summary, version, gate=gate)
            raise AirflowFailException(f"approval gate rejected {version.name} version {version.version}: {decision.reason}")
        self.publish(settings, key, summary, version, gate=gate)
        self.log.info("approval gate passed (%s): %s", mode, decision.reason)
        return self.human_task_id if mode == "manual" else self.record_task_id

    def decided_earlier(
        self, settings: Settings, key: str, summary: dict[str, Any], version: ModelVersion, mode: str
    ) -> None:
        """The model is another run's (a training cache hit) and was decided there: repeat no step of that decision.

        Rejected at approval (the gate, a person, the timeout), it fails as that run did.  Otherwise — approved,
        whatever its rollout made of it since (promoted, not promoted, rolled back) — it skips the human and
        ``record_approval``, so no second approved-model event starts a second rollout of the same model.
        """
        verdict = (
            f"{version.name} version {version.version} is the model of run {version.run_key} (reused from the step cache), "
            f"{version.status} there by {version.approved_by or 'nobody'}: {version.approval_comment or 'no comment'}"
        )
        rejected_at_approval = version.status == REJECTED and not version.rollout_outcome
        gate = {"passed": not rejected_at_approval, "reason": verdict, "approval_mode": mode}
        role = next((alias for alias in (CHAMPION, CHALLENGER) if alias in version.aliases), "")
        self.publish(settings, key, summary, version, gate=gate, role=role)
        if rejected_at_approval:
            raise AirflowFailException(f"{verdict}. Set force to retrain.")
        self.log.info("%s; nothing to approve again (role: %s, rollout: %s)", verdict, role or "none",
                      version.rollout_outcome or "not ended")
        return None  # skip every branch


class HumanApprovalOperator(_RegistryTask, ApprovalOperator):
    """Ask a human to approve or reject this run's model version; write the answer to the registry.

    The request (subject and Markdown body) shows the challenger-vs-champion comparison, the gate's
    verdict and links to the reports; an optional ``comment`` form field travels with the answer.  With no
    answer before ``response_timeout_hours`` the scheduler applies the default, ``Reject``.  On
    ``Reject`` the standard operator skips the downstream ``record_approval``.

    :param response_timeout_hours: how long to wait for an answer (templated).
    :param model_name: registered model / model package group (templated).
    :param aws_conn_id: the connection of the registry and the run summary on ``aws`` (templated).
    :param region_name: their region; ``None``: the connection's (templated).
    """

    template_fields = (*ApprovalOperator.template_fields, *AWS_TEMPLATE_FIELDS, "response_timeout_hours", "model_name")
    ui_color = "#f0e0c0"

    def __init__(
        self,
        *,
        response_timeout_hours: float = 24,
        model_name: str = DEFAULT_MODEL_NAME,
        subject: str = "Approve the new sentiment model?",
        **kwargs: Any,
    ) -> None:
        # Inside a DAG, ``params`` arrives holding the DAG's params (source "dag"); the form shows only task params.
        params = ParamsDict(kwargs.pop("params", None) or {})
        # Optional on the form and in the REST API alike: null-able, so the form does not require it.
        params["comment"] = Param(
            None, type=["null", "string"], title="Comment", description="Why you approve or reject (optional)", source="task"
        )
        # response_timeout is set from response_timeout_hours in execute; passing one here keeps the
        # HITL operator from taking execution_timeout (the pre-wait phase's bound) as the wait.
        super().__init__(
            subject=subject, defaults=[ApprovalOperator.REJECT], params=params,
            response_timeout=dt.timedelta(hours=24), **kwargs,
        )
        self.response_timeout_hours = response_timeout_hours
        self.model_name = model_name

    def execute(self, context: Context) -> None:
        settings, key, summary, _, version = self.run_version(context)
        if version.status != PENDING:
            raise AirflowFailException(f"{version.name} version {version.version} is already {version.status}")
        hours = self.response_timeout_hours
        if hours <= 0:
            raise AirflowFailException(f"response_timeout_hours must be > 0, got {hours!r}")
        self.response_timeout = dt.timedelta(hours=hours)
        evaluation = self.evaluation(settings, key, summary)
        training = summary.get("training") or {}
        links = {
            "evaluation": evaluation.get("evaluation_uri", ""),
            "training metrics": training.get("metrics_uri", ""),
            "training plots": training.get("plots_uri", ""),
            "quality report": version.lineage.get("quality_report", ""),
            "feature manifest": version.lineage.get("feature_manifest", ""),
            "run summary": run_summary_uri(settings, key),
            "model": version.model_uri,
        }
        gate = (summary.get("registry") or {}).get("gate") or {}
        self.subject = f"{self.subject} {version.name} v{version.version}"
        self.body = approval_body(
            version.name, version.version, evaluation, gate.get("reason", "not recorded"), links, hours
        )
        super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        settings, key, summary, registry, version = self.run_version(context)
        if "error" in event:
            version = registry.set_approval(version.version, REJECTED, TIMEOUT_APPROVER, str(event["error"]))
            self.publish(settings, key, summary, version)
            return super().execute_complete(context, event)
        self.validate_chosen_options(event["chosen_options"])
        decision = decision_from_response(
            event["chosen_options"], event.get("responded_by_user"), event.get("params_input"), bool(event.get("timedout"))
        )
        version = registry.set_approval(version.version, decision.status, decision.approved_by, decision.comment)
        self.publish(settings, key, summary, version)
        self.log.info("%s version %s: %s by %s (%s)", version.name, version.version, decision.status, decision.approved_by,
                      decision.comment or "no comment")
        return super().execute_complete(context, event)


class RecordApprovalOperator(_RegistryTask):
    """Record the approval and assign the alias: ``champion`` for the first model ever, else ``challenger``.

    ``auto`` mode approves the pending version as ``reviewflow-gate`` (the gate already passed);
    ``manual`` mode requires the ``Approved`` that ``human_approval`` recorded.  Only a challenger
    emits the ``reviewflow_approved_model`` asset (through the ``outlets`` alias), with
    ``extra = {model_name, version, model_uri, run_key, champion_version, champion_model_uri}``.
    Returns ``{"model_name", "version", "model_uri", "role"}``.

    :param approval_mode: ``auto`` or ``manual`` (templated).
    :param model_name: registered model / model package group (templated).
    :param aws_conn_id: the connection of the registry and the run summary on ``aws`` (templated).
    :param region_name: their region; ``None``: the connection's (templated).
    """

    template_fields = (*AWS_TEMPLATE_FIELDS, "approval_mode", "model_name")
    ui_color = "#d4f0d8"

    def __init__(self, *, approval_mode: str = "auto", model_name: str = DEFAULT_MODEL_NAME, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "none_failed_min_one_success")
        kwargs.setdefault("outlets", [APPROVED_MODEL_EVENTS])
        super().__init__(**kwargs)
        self.approval_mode = approval_mode
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        mode = _check_mode(self.approval_mode)
        settings, key, summary, registry, version = self.run_version(context)
        gate = (summary.get("registry") or {}).get("gate") or {}
        if not gate.get("passed"):
            raise AirflowFailException(f"{version.name} version {version.version} has not passed the approval gate")
        if mode == "auto" and version.status == PENDING:
            version = registry.set_approval(version.version, APPROVED, GATE_APPROVER, gate["reason"])
        if version.status != APPROVED:
            raise AirflowFailException(
                f"{version.name} version {version.version} is {version.status} "
                f"(by {version.approved_by or 'nobody'}: {version.approval_comment or 'no comment'}): not recording it"
            )
        champion = registry.champion()
        if champion is None or champion.version == version.version:
            registry.set_alias(CHAMPION, version.version)
            role = CHAMPION
        else:
            registry.set_alias(CHALLENGER, version.version)
            role = CHALLENGER
            context["outlet_events"][APPROVED_MODEL_EVENTS].add(
                APPROVED_MODEL,
                extra={"model_name": version.name, "version": version.version, "model_uri": version.model_uri,
                       "run_key": key, "champion_version": champion.version, "champion_model_uri": champion.model_uri},
            )
        version = registry.get_version(version.version)
        self.publish(settings, key, summary, version, role=role, approval_recorded_at=dt.datetime.now(dt.UTC).isoformat())
        self.log.info("%s version %s approved by %s: now %s", version.name, version.version, version.approved_by, role)
        return {"model_name": version.name, "version": version.version, "model_uri": version.model_uri, "role": role}
