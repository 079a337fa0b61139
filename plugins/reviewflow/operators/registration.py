"""``register``: this run's model as a ``PendingManualApproval`` version with its test metrics and lineage.

:func:`RegisterModelOperator` is a factory like ``TrainModelOperator``: ``local`` gives
:class:`LocalRegisterModelOperator` (MLflow), ``aws`` :class:`SageMakerRegisterModelOperator`, the provider's
``SageMakerRegisterModelVersionOperator`` configured at run time.  The same run key always returns the same
version, and a model the training reused from the step cache returns the version of the run that computed it.
What a version is registered with is assembled by :mod:`include.registry.registration`; the run summary's
``registry`` section records the result.  The approval steps that follow: :mod:`reviewflow.operators.approval`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerRegisterModelVersionOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from include.config import REPO_ROOT, load_settings
from include.lineage_datasets import REGISTRY_NAMESPACES, model_version_dataset, storage_dataset
from include.registry.base import DEFAULT_MODEL_NAME
from include.registry.lineage import git_commit
from include.registry.registration import Registration, registration, reused_from
from include.registry.run_summary import registry_section, require_summary, summary_section
from reviewflow.backends import registry_for, storage_for
from reviewflow.lineage import ReportsLineage
from reviewflow.run_summary import read_run_summary, run_summary_uri, update_run_summary
from reviewflow.runs import run_key

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.config import Settings
    from include.registry.base import ModelRegistry, ModelVersion


class _RegistersRun(ReportsLineage):
    """Around the registry call of both ``register`` operators: read the run and record the version it got
    (in the run summary, and as lineage: the model and its evaluation → the model version)."""

    snapshot: str
    curated_uri: str
    aws_conn_id: str | None
    region_name: str | None
    log: Any

    def read_run(self, context: Context) -> tuple[Settings, str, dict[str, Any], Registration]:
        """Settings, run key, the run summary, and the registration assembled from the run summary, the
        training ``metrics.json`` and the ingest run's summary (quality report; the snapshot id is its run key)."""
        settings = load_settings()
        key = run_key(context)
        connection = {"aws_conn_id": self.aws_conn_id, "region_name": self.region_name}
        summary_uri = run_summary_uri(settings, key)
        summary = dict(require_summary(read_run_summary(settings, key, **connection), summary_uri, key))
        metrics_uri = summary_section(summary, "training", summary_uri, f"run the train task of run {key} first")["metrics_uri"]
        assembled = registration(
            summary=summary,
            summary_uri=summary_uri,
            snapshot=self.snapshot,
            curated_uri=self.curated_uri,
            metrics_file=storage_for(metrics_uri, **connection).read_json(metrics_uri),
            ingest_summary=read_run_summary(settings, self.snapshot, **connection),
            ingest_summary_uri=run_summary_uri(settings, self.snapshot),
            commit=git_commit(REPO_ROOT),
            dag_id=context["dag_run"].dag_id,
            run_id=context["dag_run"].run_id,
            run_key=key,
        )
        return settings, key, summary, assembled

    def registered_earlier(self, registry: ModelRegistry, summary: dict[str, Any], key: str) -> ModelVersion | None:
        """The version of the run whose model this run's training reused from the step cache, if it was registered."""
        from_run = reused_from(summary, key)
        return registry.find_run(from_run) if from_run else None

    def registered(self, settings: Settings, key: str, summary: dict[str, Any], version: ModelVersion) -> dict[str, Any]:
        """Record ``version`` in the run summary's ``registry`` section; the task's XCom."""
        self.log.info(
            "registered %s version %s (%s) from %s", version.name, version.version, version.status, version.model_uri
        )
        update_run_summary(
            settings, key, "registry", registry_section(summary, version.to_dict()), self.aws_conn_id,
            region_name=self.region_name,
        )
        self.report_lineage(
            [storage_dataset(summary["training"]["model_uri"]), storage_dataset(summary["evaluation"]["evaluation_uri"])],
            [model_version_dataset(REGISTRY_NAMESPACES[settings.backend], version.name, version.version)],
        )
        return {"model_name": version.name, "version": version.version, "model_uri": version.model_uri, "status": version.status}


class LocalRegisterModelOperator(_RegistersRun, BaseOperator):
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
    aws_conn_id = None  # MLflow and local files: no AWS call
    region_name = None

    def __init__(self, *, snapshot: str, curated_uri: str, model_name: str = DEFAULT_MODEL_NAME, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.snapshot = snapshot
        self.curated_uri = curated_uri
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        settings, key, summary, assembled = self.read_run(context)
        registry = registry_for(settings, self.model_name, aws_conn_id=None)
        version = self.registered_earlier(registry, summary, key)
        if version is not None:
            self.log.info("the model is run %s's (training cache hit), already %s version %s: not registering it again",
                          version.run_key, version.name, version.version)
        else:
            version = registry.register_version(key, assembled.model_uri, assembled.metrics, assembled.lineage, assembled.params)
        return self.registered(settings, key, summary, version)


class SageMakerRegisterModelOperator(_RegistersRun, SageMakerRegisterModelVersionOperator):
    """The ``aws`` ``register``: the provider's ``SageMakerRegisterModelVersionOperator`` with a run-time config.

    Same inputs, checks and result as :class:`LocalRegisterModelOperator`.  If the run already has a
    model package (a retry) that version is returned and nothing is created; otherwise the package
    request of :meth:`SageMakerModelRegistry.package_request` (JSON content types, ``ModelMetrics``
    pointing at the training ``metrics.json`` in S3, lineage metadata) becomes the provider
    operator's ``extras`` and the provider creates the package as ``PendingManualApproval``.

    :param snapshot: the snapshot id from ``resolve_snapshot`` (templated).
    :param curated_uri: the snapshot's curated URI from ``resolve_snapshot`` (templated).
    :param model_name: the model package group (templated).
    :param aws_conn_id: the connection of every S3 and SageMaker call: required, no ``aws_default`` (templated).
    :param region_name: their region; ``None``: the connection's (templated).
    """

    template_fields = (*SageMakerRegisterModelVersionOperator.template_fields, "snapshot", "curated_uri", "model_name")
    ui_color = "#e0d4f0"

    def __init__(
        self, *, aws_conn_id: str | None, snapshot: str, curated_uri: str, model_name: str = DEFAULT_MODEL_NAME,
        **kwargs: Any,
    ) -> None:
        # Image, model and package fields are filled in at run time (they need the run summary and the region).
        super().__init__(image_uri="", model_url="", package_group_name=model_name, aws_conn_id=aws_conn_id, **kwargs)
        self.snapshot = snapshot
        self.curated_uri = curated_uri
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        from include.registry.sagemaker_registry import SageMakerModelRegistry

        settings, key, summary, assembled = self.read_run(context)
        registry = SageMakerModelRegistry(self.hook.conn, self.model_name)
        version = registry.find_run(key) or self.registered_earlier(registry, summary, key)
        if version is not None:
            self.log.info("run %s already has %s version %s", key, version.name, version.version)
            return self.registered(settings, key, summary, version)
        try:
            request = registry.package_request(key, assembled.model_uri, assembled.metrics, assembled.lineage)
        except ValueError as error:
            raise AirflowFailException(f"register of run {key}: {error}") from error
        registry.ensure_group()  # with a proper description; the provider's own attempt then finds it
        # The request (``extras``) overrides the provider's own InferenceSpecification and description.
        self.package_group_name = self.model_name
        self.package_desc = request["ModelPackageDescription"]
        self.extras = request
        arn = super().execute(context)
        return self.registered(settings, key, summary, registry.version_of(arn))


def RegisterModelOperator(*, backend: str | None = None, **kwargs: Any) -> BaseOperator:  # noqa: N802 - reads as a class
    """The ``register`` operator for ``backend`` (default: ``REVIEWFLOW_BACKEND``); same keyword arguments."""
    if (backend or load_settings().backend) == "aws":
        return SageMakerRegisterModelOperator(**kwargs)
    for aws_only in ("aws_conn_id", "region_name"):
        kwargs.pop(aws_only, None)
    return LocalRegisterModelOperator(**kwargs)
