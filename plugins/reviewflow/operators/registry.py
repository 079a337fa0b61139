"""Register the run's model, gate it automatically, ask a human if wanted, and record the decision.

Wiring in ``reviews_train`` after ``evaluate``::

    register >> approval_gate >> [human_approval, record_approval]
    human_approval >> record_approval

* ``register`` (:func:`RegisterModelOperator`, a factory like ``TrainModelOperator``): the model, its
  test metrics and lineage as a ``PendingManualApproval`` version; the same run key always returns the
  same version.  ``local``: :class:`LocalRegisterModelOperator` (MLflow); ``aws``:
  :class:`SageMakerRegisterModelOperator`, the provider's ``SageMakerRegisterModelVersionOperator``
  configured at run time.
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerRegisterModelVersionOperator
from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator, Param
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from include.config import REPO_ROOT, load_settings
from include.lineage_datasets import model_version_dataset, storage_dataset
from include.registry.approval import (
    GATE_APPROVER,
    TIMEOUT_APPROVER,
    approval_body,
    decision_from_response,
    gate_decision,
)
from include.registry.base import APPROVED, CHALLENGER, CHAMPION, DEFAULT_MODEL_NAME, PENDING, REJECTED
from include.registry.lineage import build_lineage, git_commit
from reviewflow.backends import registry_for, storage_for
from reviewflow.dag_defaults import APPROVED_MODEL, APPROVED_MODEL_EVENTS
from reviewflow.lineage import ReportsLineage
from reviewflow.operators.base import AWS_TEMPLATE_FIELDS, AwsConnectedOperator, ExplicitAwsConnection
from reviewflow.run_summary import read_run_summary, run_summary_uri, update_run_summary
from reviewflow.runs import run_key

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.config import Settings
    from include.registry.base import ModelRegistry, ModelVersion

APPROVAL_MODES = ("auto", "manual")


def _summary(settings: Settings, key: str, aws_conn_id: str | None, region_name: str | None) -> dict[str, Any]:
    summary = read_run_summary(settings, key, aws_conn_id, region_name=region_name)
    if summary is None:
        uri = run_summary_uri(settings, key)
        raise AirflowException(f"{uri} does not exist: run the training and evaluate tasks of run {key} first")
    return summary


def _section(summary: dict[str, Any], name: str, settings: Settings, key: str, hint: str) -> dict[str, Any]:
    section = summary.get(name)
    if not section:
        raise AirflowException(f"{run_summary_uri(settings, key)} has no '{name}' section: {hint}")
    return section


def _publish(
    settings: Settings,
    key: str,
    summary: dict[str, Any],
    version: ModelVersion,
    *,
    aws_conn_id: str | None,
    region_name: str | None,
    **extra: Any,
) -> dict[str, Any]:
    """Write the version's state (plus ``extra``) into the run summary's ``registry`` section."""
    section = {**(summary.get("registry") or {}), **version.to_dict(), **extra}
    update_run_summary(settings, key, "registry", section, aws_conn_id, region_name=region_name)
    return section


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
        summary = _summary(settings, key, self.aws_conn_id, self.region_name)
        registered = _section(summary, "registry", settings, key, f"run the register task of run {key} first")
        registry = registry_for(settings, self.model_name, **self.aws_connection)
        return settings, key, summary, registry, registry.get_version(registered["version"])

    def publish(
        self, settings: Settings, key: str, summary: dict[str, Any], version: ModelVersion, **extra: Any
    ) -> dict[str, Any]:
        """Write the version's state (plus ``extra``) into the run summary's ``registry`` section."""
        return _publish(settings, key, summary, version, **self.aws_connection, **extra)


@dataclass(frozen=True)
class _Registration:
    """What ``register`` needs from the run: the model, its test metrics and lineage."""

    settings: Settings
    key: str
    summary: dict[str, Any]
    model_uri: str
    metrics: dict[str, float]
    lineage: dict[str, str]
    params: dict[str, Any] | None


def _registration(
    context: Context, snapshot: str, curated_uri: str, aws_conn_id: str | None, region_name: str | None
) -> _Registration:
    """Read the run summary, the training ``metrics.json`` and the ingest run's summary; build metrics and lineage."""
    if not snapshot or not curated_uri or "None" in (snapshot, curated_uri):
        raise AirflowException(f"snapshot {snapshot!r} / curated_uri {curated_uri!r}: resolve_snapshot gave none")
    settings = load_settings()
    key = run_key(context)
    summary = _summary(settings, key, aws_conn_id, region_name)
    training = _section(summary, "training", settings, key, f"run the train task of run {key} first")
    evaluation = _section(summary, "evaluation", settings, key, f"run the evaluate task of run {key} first")
    metrics_file = storage_for(training["metrics_uri"], aws_conn_id, region_name=region_name).read_json(
        training["metrics_uri"]
    )
    lineage = build_lineage(
        run_summary=summary,
        run_summary_uri=run_summary_uri(settings, key),
        snapshot=snapshot,
        curated_uri=curated_uri,
        ingest_summary=read_run_summary(settings, snapshot, aws_conn_id, region_name=region_name),
        ingest_summary_uri=run_summary_uri(settings, snapshot),
        training_params=metrics_file.get("hyperparameters") or {},
        commit=git_commit(REPO_ROOT),
        dag_id=context["dag_run"].dag_id,
        run_id=context["dag_run"].run_id,
        run_key=key,
    )
    metrics = {
        "test_macro_f1": evaluation["challenger"]["macro_f1"],
        "test_accuracy": evaluation["challenger"]["accuracy"],
        "validation_macro_f1": training.get("validation_macro_f1"),
        "champion_test_macro_f1": evaluation.get("champion_macro_f1"),
        "delta_test_macro_f1": evaluation.get("delta_macro_f1"),
        "test_rows": evaluation.get("test_rows"),
        **{f"test_f1_{label}": figures["f1"] for label, figures in evaluation["challenger"]["per_class"].items()},
    }
    interval = evaluation.get("delta_macro_f1_ci95")
    if interval:
        metrics["delta_test_macro_f1_ci95_low"], metrics["delta_test_macro_f1_ci95_high"] = interval
    return _Registration(
        settings, key, summary, training["model_uri"], {k: v for k, v in metrics.items() if v is not None}, lineage,
        metrics_file.get("hyperparameters"),
    )


def _registered_earlier(registry: ModelRegistry, registration: _Registration) -> ModelVersion | None:
    """The version of the run whose model this run's training reused from the step cache, if it was registered.

    A cache hit copies that run's model byte for byte: registering the copy would put the same model in
    the registry twice and roll it out again.
    """
    cache = registration.summary["training"].get("cache") or {}
    from_run = cache.get("from_run")
    if cache.get("status") != "hit" or not from_run or from_run == registration.key:
        return None
    return registry.find_run(from_run)


def _registered(
    operator: BaseOperator,
    registration: _Registration,
    version: ModelVersion,
    aws_conn_id: str | None,
    region_name: str | None,
) -> dict[str, Any]:
    operator.log.info(
        "registered %s version %s (%s) from %s", version.name, version.version, version.status, version.model_uri
    )
    _publish(
        registration.settings, registration.key, registration.summary, version,
        aws_conn_id=aws_conn_id, region_name=region_name,
    )
    return {"model_name": version.name, "version": version.version, "model_uri": version.model_uri, "status": version.status}


class LocalRegisterModelOperator(ReportsLineage, BaseOperator):
    """Register this run's model as ``PendingManualApproval`` with its test metrics and lineage (idempotent per run).

    Reads the run summary (``features``, ``training``, ``evaluation``), the training ``metrics.json``
    (hyperparameters) and the ingest run's summary (quality report; the snapshot id is its run key).
    Returns ``{"model_name", "version", "model_uri", "status"}``.  It runs on the ``local`` backend only,
    so it makes no AWS call and takes no connection.

    :param snapshot: the snapshot id from ``resolve_snapshot`` (templated).
    :param curated_uri: the snapshot's curated URI from ``resolve_snapshot`` (templated).
    :param model_name: registered model / model package group (templated).
    """

    template_fields = ("snapshot", "curated_uri", "model_name")
    ui_color = "#e0d4f0"

    def __init__(self, *, snapshot: str, curated_uri: str, model_name: str = DEFAULT_MODEL_NAME, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.snapshot = snapshot
        self.curated_uri = curated_uri
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        registration = _registration(context, self.snapshot, self.curated_uri, None, None)
        registry = registry_for(registration.settings, self.model_name, aws_conn_id=None)
        version = _registered_earlier(registry, registration)
        if version is not None:
            self.log.info("the model is run %s's (training cache hit), already %s version %s: not registering it again",
                          version.run_key, version.name, version.version)
        else:
            version = registry.register_version(
                registration.key, registration.model_uri, registration.metrics, registration.lineage, registration.params
            )
        self.report_lineage(
            [storage_dataset(registration.model_uri), storage_dataset(registration.lineage["evaluation"])],
            [model_version_dataset("mlflow", version.name, version.version)],
        )
        return _registered(self, registration, version, None, None)


class SageMakerRegisterModelOperator(ExplicitAwsConnection, SageMakerRegisterModelVersionOperator):
    """The ``aws`` ``register``: the provider's ``SageMakerRegisterModelVersionOperator`` with a run-time config.

    Same inputs, checks and result as :class:`LocalRegisterModelOperator`.  If the run already has a
    model package (a retry) that version is returned and nothing is created; otherwise the package
    request of :meth:`SageMakerModelRegistry.package_request` (JSON content types, ``ModelMetrics``
    pointing at the training ``metrics.json`` in S3, lineage metadata) becomes the provider
    operator's ``extras`` and the provider creates the package as ``PendingManualApproval``.

    :param snapshot: the snapshot id from ``resolve_snapshot`` (templated).
    :param curated_uri: the snapshot's curated URI from ``resolve_snapshot`` (templated).
    :param model_name: the model package group (templated).
    :param aws_conn_id: the connection of every S3 and SageMaker call (templated).
    :param region_name: their region; ``None``: the connection's (templated).
    """

    template_fields = (*SageMakerRegisterModelVersionOperator.template_fields, "snapshot", "curated_uri", "model_name")
    ui_color = "#e0d4f0"

    def __init__(self, *, snapshot: str, curated_uri: str, model_name: str = DEFAULT_MODEL_NAME, **kwargs: Any) -> None:
        # Image, model and package fields are filled in at run time (they need the run summary and the region).
        super().__init__(image_uri="", model_url="", package_group_name=model_name, **kwargs)
        self.snapshot = snapshot
        self.curated_uri = curated_uri
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        from include.registry.sagemaker_registry import SageMakerModelRegistry

        registration = _registration(context, self.snapshot, self.curated_uri, self.aws_conn_id, self.region_name)
        registry = SageMakerModelRegistry(self.hook.conn, self.model_name)
        version = registry.find_run(registration.key) or _registered_earlier(registry, registration)
        if version is not None:
            self.log.info("run %s already has %s version %s", registration.key, version.name, version.version)
            return _registered(self, registration, version, self.aws_conn_id, self.region_name)
        try:
            request = registry.package_request(
                registration.key, registration.model_uri, registration.metrics, registration.lineage
            )
        except ValueError as error:
            raise AirflowFailException(f"register of run {registration.key}: {error}") from error
        registry.ensure_group()  # with a proper description; the provider's own attempt then finds it
        # The request (``extras``) overrides the provider's own InferenceSpecification and description.
        self.package_group_name = self.model_name
        self.package_desc = request["ModelPackageDescription"]
        self.extras = request
        arn = super().execute(context)
        return _registered(self, registration, registry.version_of(arn), self.aws_conn_id, self.region_name)


def RegisterModelOperator(*, backend: str | None = None, **kwargs: Any) -> BaseOperator:
    """The ``register`` operator for ``backend`` (default: ``REVIEWFLOW_BACKEND``); same keyword arguments."""
    if (backend or load_settings().backend) == "aws":
        return SageMakerRegisterModelOperator(**kwargs)
    for aws_only in ("aws_conn_id", "region_name"):
        kwargs.pop(aws_only, None)
    return LocalRegisterModelOperator(**kwargs)


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
        min_macro_f1: float | str = 0.5,
        max_f1_drop: float | str = 0.0,
        min_test_rows: int | str = 100,
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
        evaluation = _section(summary, "evaluation", settings, key, f"run the evaluate task of run {key} first")
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
                float(self.min_macro_f1), float(self.max_f1_drop),
                test_rows=int(evaluation["test_rows"]), min_test_rows=int(self.min_test_rows),
                delta_ci95=(evaluation.get("deltas") or {}).get("macro_f1_ci95"),
            )
        except ValueError as error:
            raise AirflowFailException(f"approval gate of {version.name} version {version.version}: {error}") from error
        gate = {"passed": decision.passed, "reason": decision.reason, "min_macro_f1": float(self.min_macro_f1),
                "max_f1_drop": float(self.max_f1_drop), "min_test_rows": int(self.min_test_rows), "approval_mode": mode}
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

        ``Rejected`` fails as the first decision did; ``Approved`` skips the human and ``record_approval``,
        so no second approved-model event starts a second rollout of the same model.
        """
        verdict = (
            f"{version.name} version {version.version} is the model of run {version.run_key} (reused from the step cache), "
            f"{version.status} there by {version.approved_by or 'nobody'}: {version.approval_comment or 'no comment'}"
        )
        gate = {"passed": version.status == APPROVED, "reason": verdict, "approval_mode": mode}
        role = next((alias for alias in (CHAMPION, CHALLENGER) if alias in version.aliases), "")
        self.publish(settings, key, summary, version, gate=gate, role=role)
        if version.status == REJECTED:
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
        response_timeout_hours: float | str = 24,
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
        hours = float(self.response_timeout_hours)
        if hours <= 0:
            raise AirflowFailException(f"response_timeout_hours must be > 0, got {self.response_timeout_hours!r}")
        self.response_timeout = dt.timedelta(hours=hours)
        evaluation = _section(summary, "evaluation", settings, key, f"run the evaluate task of run {key} first")
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
