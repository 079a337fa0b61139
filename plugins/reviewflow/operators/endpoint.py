"""Put variants on the model endpoint and set their weights, on either backend.

* ``DeployEndpointOperator(...)`` is a factory like ``TrainModelOperator``: with ``REVIEWFLOW_BACKEND=local``
  a :class:`LocalDeployEndpointOperator` (starts the local server detached if it is not running, then
  reconciles its variants through the admin API), with ``aws`` a :class:`SageMakerDeployEndpointOperator`,
  the provider's ``SageMakerEndpointOperator`` given, at run time, an endpoint config holding every variant
  (models and config created by :class:`~reviewflow.hooks.endpoint.SageMakerEndpointHook` unless they exist).
  The provider's ``SageMakerModelOperator`` is not used: it creates its model unconditionally, so a retry
  fails on "Cannot create already existing model", and an endpoint config needs one model per variant.
* :class:`SetEndpointWeightsOperator` (custom: no provider operator wraps ``UpdateEndpointWeightsAndCapacities``)
  sets weights on either backend; on aws it waits for ``InService`` (or defers on the provider's trigger).

Both are idempotent: the same variants or weights again change nothing (no new weights generation, no
second model, config or endpoint).  Both return the same small dict: ``{"endpoint_name", "backend",
"status", "address", "weights_generation", "weights", "variants": [{"name", "model_version", "int8",
"weight", "invocations"}]}``.  The local server outlives the task on purpose (it is the endpoint), so
killing the task does not stop it; ``make stop`` does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from include.config import load_settings
from include.lineage_datasets import endpoint_variant_dataset, model_version_dataset
from include.registry.base import DEFAULT_MODEL_NAME
from include.registry.sagemaker_registry import DEFAULT_INFERENCE_INSTANCE_TYPE
from include.serving.control import EndpointError
from include.serving.state import DEFAULT_ENDPOINT_NAME
from include.serving.variants import EndpointDescription, VariantSpec, check_weight
from reviewflow.backends import endpoint_hook_for
from reviewflow.hooks.endpoint import LocalEndpointHook, SageMakerEndpointHook
from reviewflow.lineage import ReportsLineage
from reviewflow.operators.base import AWS_TEMPLATE_FIELDS, AwsConnectedOperator
from reviewflow.settings import load_aws_settings

if TYPE_CHECKING:
    from airflow.sdk import Context

WAIT_SECONDS = 3600


def endpoint_result(description: EndpointDescription) -> dict[str, Any]:
    """The XCom of the endpoint operators."""
    return {**description.to_dict(), "weights": description.weights}


def variant_specs(variants: Sequence[Mapping[str, Any]]) -> list[VariantSpec]:
    """``[{"model_version", "weight", "int8"}, ...]`` as specs.

    :raises AirflowFailException: naming the field.
    """
    if isinstance(variants, str) or not isinstance(variants, Sequence) or not variants:
        raise AirflowFailException(
            f"variants: must be a non-empty list of {{model_version, weight, int8}}, got {variants!r}"
        )
    try:
        return [VariantSpec.from_dict(value, f"variants[{i}]") for i, value in enumerate(variants)]
    except ValueError as error:
        raise AirflowFailException(str(error)) from None


def weights_of(weights: Mapping[str, float]) -> dict[str, float]:
    """``{variant: weight}``. :raises AirflowFailException: naming the field."""
    if not isinstance(weights, Mapping) or not weights:
        raise AirflowFailException(f"weights: must be a non-empty mapping of variant to weight, got {weights!r}")
    try:
        return {str(name): check_weight(f"weights.{name}", value) for name, value in weights.items()}
    except ValueError as error:
        raise AirflowFailException(str(error)) from None


class LocalDeployEndpointOperator(ReportsLineage, BaseOperator):
    """Serve exactly ``variants`` on the local endpoint, starting its server if it is not running.

    :param variants: ``[{"model_version": "3", "weight": 0.9, "int8": false}, ...]`` (templated).
    :param endpoint_name: the endpoint (templated).
    :param model_name: the registered model whose versions are served (templated).
    :param port: preferred port if the server has to be started (a free one if taken).
    """

    template_fields = ("variants", "endpoint_name", "model_name")
    template_fields_renderers = {"variants": "json"}
    ui_color = "#c9e4de"

    def __init__(
        self, *, variants: Sequence[Mapping[str, Any]], endpoint_name: str = DEFAULT_ENDPOINT_NAME,
        model_name: str = DEFAULT_MODEL_NAME, port: int | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.variants = variants
        self.endpoint_name = endpoint_name
        self.model_name = model_name
        self.port = port

    def execute(self, context: Context) -> dict[str, Any]:
        specs = variant_specs(self.variants)
        hook = LocalEndpointHook(self.endpoint_name, self.model_name, port=self.port)
        try:
            description = hook.deploy(specs)
        except (KeyError, ValueError) as error:  # a version the registry lacks, weights all zero: a retry cannot help
            raise AirflowFailException(f"deploy to endpoint {self.endpoint_name}: {error}") from None
        except EndpointError as error:
            if error.status >= 500:
                raise
            raise AirflowFailException(f"deploy to endpoint {self.endpoint_name}: {error}") from None
        self.log.info("endpoint %s on %s serves %s (weights generation %d)", self.endpoint_name, description.address,
                      description.weights, description.weights_generation)
        self.report_lineage(
            [model_version_dataset("mlflow", self.model_name, spec.model_version) for spec in specs],
            [endpoint_variant_dataset(self.endpoint_name, spec.name) for spec in specs],
        )
        return endpoint_result(description)


class SageMakerDeployEndpointOperator(ReportsLineage, SageMakerEndpointOperator):
    """Serve exactly ``variants`` on a SageMaker endpoint: the provider's ``SageMakerEndpointOperator`` at run time.

    The hook creates, unless they exist, one model per variant and the endpoint config holding them all
    (Data Capture on); the provider then creates the endpoint, or updates it when it exists, and waits
    (or defers).  Nothing is called when the endpoint already runs that config.  Afterwards the weights
    generation is recorded and the Athena tables over feedback and Data Capture are created if missing.

    :param variants: ``[{"model_version": "3", "weight": 0.9, "int8": false}, ...]`` (templated).
    :param endpoint_name: the SageMaker endpoint (templated).
    :param model_name: the model package group (templated).
    :param instance_type: instances of each variant (templated).
    :param instance_count: instances per variant.
    :param create_feedback_tables: create the Athena tables (Variables ``reviewflow_athena_*``).
    :param aws_conn_id: the connection of every SageMaker, S3 and Athena call: required, no ``aws_default`` (templated).
    Other arguments are ``SageMakerEndpointOperator``'s (``region_name`` — templated —, ``deferrable``,
    ``check_interval``, ``max_ingestion_time``).
    """

    aws_hook_class = SageMakerEndpointHook
    template_fields = (
        *SageMakerEndpointOperator.template_fields, "variants", "endpoint_name", "model_name", "instance_type"
    )
    template_fields_renderers = {**SageMakerEndpointOperator.template_fields_renderers, "variants": "json"}
    ui_color = "#c9e4de"

    def __init__(
        self, *, aws_conn_id: str | None, variants: Sequence[Mapping[str, Any]],
        endpoint_name: str = DEFAULT_ENDPOINT_NAME, model_name: str = DEFAULT_MODEL_NAME,
        instance_type: str = DEFAULT_INFERENCE_INSTANCE_TYPE, instance_count: int = 1, create_feedback_tables: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(config={}, aws_conn_id=aws_conn_id, **kwargs)  # the endpoint request is built at run time
        self.variants = variants
        self.endpoint_name = endpoint_name
        self.model_name = model_name
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.create_feedback_tables = create_feedback_tables

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        settings = load_settings()
        return {
            **super()._hook_parameters, "endpoint_name": self.endpoint_name, "data_root": settings.data_root,
            "model_name": self.model_name, "role_arn": load_aws_settings(settings).sagemaker_role_arn,
            "instance_type": self.instance_type, "instance_count": self.instance_count,
        }

    def execute(self, context: Context) -> dict[str, Any]:
        specs = variant_specs(self.variants)
        try:
            config_name = self.hook.ensure_endpoint_config(specs)
        except ValueError as error:
            raise AirflowFailException(str(error)) from None
        action, request = self.hook.endpoint_request(config_name)
        if action != "none":
            self.log.info("%s endpoint %s with config %s", action, self.endpoint_name, config_name)
            self.operation, self.config = action, request
            super().execute(context)  # create or update, then wait (or defer to execute_complete)
        return self._finish()

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        super().execute_complete(context, event)
        return self._finish()

    def _finish(self) -> dict[str, Any]:
        specs = variant_specs(self.variants)
        self.report_lineage(
            [model_version_dataset("sagemaker", self.model_name, spec.model_version) for spec in specs],
            [endpoint_variant_dataset(self.endpoint_name, spec.name) for spec in specs],
        )
        if self.create_feedback_tables:
            aws = load_aws_settings(load_settings())
            self.hook.ensure_feedback_tables(aws.athena_database, aws.athena_workgroup, aws.athena_output_location)
        description = self.hook.record_generation()
        self.log.info("endpoint %s serves %s (weights generation %d)", self.endpoint_name, description.weights,
                      description.weights_generation)
        return endpoint_result(description)


def DeployEndpointOperator(*, backend: str | None = None, **kwargs: Any) -> BaseOperator:  # noqa: N802 - a class
    """The deploy operator for ``backend`` (default: ``REVIEWFLOW_BACKEND``); same keyword arguments."""
    if (backend or load_settings().backend) == "aws":
        kwargs.pop("port", None)
        return SageMakerDeployEndpointOperator(**kwargs)
    for aws_only in ("aws_conn_id", "region_name", "instance_type", "instance_count", "create_feedback_tables",
                     "deferrable", "check_interval", "max_ingestion_time"):
        kwargs.pop(aws_only, None)
    return LocalDeployEndpointOperator(**kwargs)


class SetEndpointWeightsOperator(AwsConnectedOperator):
    """Set variant weights on the endpoint of ``REVIEWFLOW_BACKEND`` (variants not named keep theirs).

    ``local``: one admin call, applied atomically.  ``aws``: ``UpdateEndpointWeightsAndCapacities``, then
    wait until the endpoint is ``InService`` (``deferrable``: on the provider's ``SageMakerTrigger``, no
    worker slot held) and record the weights generation.  The same weights again call nothing.

    :param weights: ``{"v3": 0.9, "v4": 0.1}`` (templated).
    :param endpoint_name: the endpoint (templated).
    :param model_name: the registered model / model package group (templated).
    :param aws_conn_id: AWS connection of the aws backend (templated).
    :param region_name: AWS region of the aws backend (templated).
    :param deferrable: on aws, wait in the triggerer.
    :param check_interval: seconds between endpoint status checks on aws.
    :param max_wait_seconds: how long to wait for ``InService`` on aws.
    """

    template_fields = (*AWS_TEMPLATE_FIELDS, "weights", "endpoint_name", "model_name")
    template_fields_renderers = {"weights": "json"}
    ui_color = "#c9e4de"

    def __init__(
        self, *, weights: Mapping[str, float], endpoint_name: str = DEFAULT_ENDPOINT_NAME,
        model_name: str = DEFAULT_MODEL_NAME, deferrable: bool = False, check_interval: int = 30,
        max_wait_seconds: int = WAIT_SECONDS, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.weights = weights
        self.endpoint_name = endpoint_name
        self.model_name = model_name
        self.deferrable = deferrable
        self.check_interval = check_interval
        self.max_wait_seconds = max_wait_seconds

    def weights_with_lineage(self) -> dict[str, float]:
        """The weights to set; the variants they change are this task's lineage outputs."""
        weights = weights_of(self.weights)
        self.report_lineage([], [endpoint_variant_dataset(self.endpoint_name, variant) for variant in weights])
        return weights

    def _hook(self) -> LocalEndpointHook | SageMakerEndpointHook:
        return endpoint_hook_for(load_settings(), self.endpoint_name, self.model_name, **self.aws_connection)

    def execute(self, context: Context) -> dict[str, Any]:
        weights = self.weights_with_lineage()
        hook = self._hook()
        try:
            if isinstance(hook, LocalEndpointHook):
                return endpoint_result(hook.set_weights(weights))
            started = hook.request_weights(weights)
        except ValueError as error:  # unknown variant, all weights zero
            raise AirflowFailException(str(error)) from None
        if started and self.deferrable:
            self.defer(
                trigger=SageMakerTrigger(
                    job_name=self.endpoint_name, job_type="endpoint", waiter_delay=self.check_interval,
                    waiter_max_attempts=max(1, self.max_wait_seconds // self.check_interval),
                    aws_conn_id=self.aws_conn_id, region_name=self.region_name,
                ),
                method_name="execute_complete",
                timeout=dt.timedelta(seconds=self.max_wait_seconds),
            )
        if started:
            hook.wait_in_service(self.check_interval, max(1, self.max_wait_seconds // self.check_interval))
        return endpoint_result(hook.record_generation())

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        validated = validate_execute_complete_event(event)
        if validated["status"] != "success":
            raise AirflowException(f"endpoint {self.endpoint_name} did not return to InService: {validated}")
        self.weights_with_lineage()
        hook = self._hook()
        assert isinstance(hook, SageMakerEndpointHook)
        return endpoint_result(hook.record_generation())
