"""The model endpoint of the configured backend behind one interface (:class:`EndpointHook`).

* ``local``: :class:`LocalEndpointHook` — the HTTP server of :mod:`include.serving` under the data root,
  started detached (own process group) when it is not running, driven through its admin API.
* ``aws``: :class:`SageMakerEndpointHook` — the provider's ``SageMakerHook`` plus production variants:
  one SageMaker model per registry version (archive with the inference code, see
  :mod:`include.serving.sagemaker`), one endpoint config per variant set, ``CreateEndpoint`` /
  ``UpdateEndpoint`` and ``UpdateEndpointWeightsAndCapacities`` with the ``endpoint_in_service`` waiter,
  Data Capture on.  Every name derives from what it holds, so a retry reuses what an earlier try made.

Both answer :class:`include.serving.variants.EndpointDescription` and give a
:class:`include.serving.feedback.FeedbackReader` (SQLite locally, S3 listing on aws).  Variants are named
``v<model version>[-int8]`` (:func:`include.serving.variants.variant_name`).  ``reviewflow.backends.endpoint_hook_for``
gives the one of the configured backend.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from functools import cached_property
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

from include.config import load_settings
from include.registry.base import DEFAULT_MODEL_NAME
from include.registry.sagemaker_registry import DEFAULT_INFERENCE_INSTANCE_TYPE
from include.serving.state import DEFAULT_ENDPOINT_NAME, EndpointPaths, admin_token, load_state
from include.serving.variants import (
    EndpointDescription,
    VariantSpec,
    VariantStatus,
    parse_variant_name,
    updated_weights,
)
from include.uris import split_s3

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from include.serving.control import EndpointClient
    from include.serving.feedback import FeedbackReader
    from include.serving.s3_feedback import S3RewardWriter
    from include.serving.sagemaker import WeightsHistory


class EndpointHook(Protocol):
    """What the rollout calls on either backend."""

    endpoint_name: str

    def deploy(self, variants: Sequence[VariantSpec]) -> EndpointDescription:
        """Serve exactly ``variants`` with their weights (creating or starting the endpoint if needed)."""
        ...

    def describe(self) -> EndpointDescription: ...

    def set_weights(self, weights: Mapping[str, float]) -> EndpointDescription:
        """New weights for the named variants (others keep theirs), applied at once."""
        ...

    def add_variant(self, model_version: str, weight: float = 0.0, int8: bool = False) -> EndpointDescription:
        """Add the registry version as a variant (nothing changes if it is already there)."""
        ...

    def remove_variant(self, variant: str) -> EndpointDescription:
        """Remove the variant (nothing changes if it is not there)."""
        ...

    def feedback_reader(self) -> FeedbackReader: ...


class LocalEndpointHook:
    """The local endpoint ``endpoint_name`` under the data root.

    :param endpoint_name: folder under ``<data_root>/endpoint/``.
    :param model_name: registered model whose versions become variants.
    :param data_root: default: ``REVIEWFLOW_DATA_ROOT``.
    :param port: preferred port when the hook starts the server (default: ``REVIEWFLOW_ENDPOINT_PORT``; a free
        one if it is taken).
    :param server_args: extra ``include.serving.server`` arguments (batching, limits).
    """

    def __init__(
        self, endpoint_name: str = DEFAULT_ENDPOINT_NAME, model_name: str = DEFAULT_MODEL_NAME,
        data_root: str | None = None, port: int | None = None, server_args: Sequence[str] = (),
    ) -> None:
        settings = load_settings()
        self.endpoint_name = endpoint_name
        self.model_name = model_name
        self.paths = EndpointPaths.for_endpoint(data_root or settings.data_root, endpoint_name)
        self.port = settings.endpoint_port if port is None else port
        self.server_args = tuple(server_args)
        self._configured_token = settings.endpoint_token

    @property
    def token(self) -> str:
        return admin_token(self.paths, self._configured_token)

    def client(self) -> EndpointClient:
        """A client of the running server (started with its saved variants if it is not running)."""
        from include.serving.control import EndpointClient, start_server

        return EndpointClient(start_server(self.paths, self.port, self.server_args).url, self.token)

    def deploy(self, variants: Sequence[VariantSpec]) -> EndpointDescription:
        from include.serving.control import deploy

        return deploy(self.paths, variants, self.token, self.model_name, self.port, self.server_args)

    def describe(self) -> EndpointDescription:
        """The running server's description, or ``Stopped`` with the saved variants.

        :raises FileNotFoundError: for an endpoint never deployed.
        """
        from include.serving.control import EndpointClient, running_server

        info = running_server(self.paths)
        if info is not None:
            with EndpointClient(info.url, self.token) as client:
                return client.describe()
        state = load_state(self.paths)
        if state is None:
            raise FileNotFoundError(f"endpoint {self.endpoint_name} was never deployed ({self.paths.state} is missing)")
        return state.describe("Stopped", "")

    def set_weights(self, weights: Mapping[str, float]) -> EndpointDescription:
        with self.client() as client:
            current = client.describe()
            if updated_weights(current.weights, weights) == current.weights:
                return current  # a retry of a change already made: no new generation
            return client.set_weights(weights)

    def add_variant(self, model_version: str, weight: float = 0.0, int8: bool = False) -> EndpointDescription:
        with self.client() as client:
            return client.add_variant(VariantSpec(model_version, weight, int8))

    def remove_variant(self, variant: str) -> EndpointDescription:
        with self.client() as client:
            current = client.describe()
            return client.remove_variant(variant) if variant in current.weights else current

    def stop(self) -> bool:
        """Stop the server's process group; ``False`` if it was not running."""
        from include.serving.control import stop_server

        return stop_server(self.paths)

    def feedback_reader(self) -> FeedbackReader:
        """The feedback store (the caller closes it)."""
        from include.serving.feedback import FeedbackStore

        return FeedbackStore(self.paths.feedback)


class SageMakerEndpointHook(SageMakerHook):
    """The SageMaker endpoint ``endpoint_name`` with one production variant per served registry version.

    :param endpoint_name: the SageMaker endpoint.
    :param data_root: the ``s3://`` data root (model archives, Data Capture, feedback, weights history).
    :param model_name: the model package group whose versions become variants.
    :param role_arn: execution role of the SageMaker models (needed to create one).
    :param instance_type: instances of every variant.
    :param instance_count: instances per variant.
    :param image_uri: inference image; default: the pinned Hugging Face PyTorch inference image.
    :param aws_conn_id: the Airflow connection of every call (``None``: boto3's default credentials).
    Other keyword arguments (``region_name``, ``verify``, ``config``) go to ``SageMakerHook``.
    """

    def __init__(
        self, *, aws_conn_id: str | None, endpoint_name: str = DEFAULT_ENDPOINT_NAME, data_root: str | None = None,
        model_name: str = DEFAULT_MODEL_NAME, role_arn: str | None = None,
        instance_type: str = DEFAULT_INFERENCE_INSTANCE_TYPE, instance_count: int = 1, image_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(aws_conn_id=aws_conn_id, **kwargs)
        self.endpoint_name = endpoint_name
        self.data_root = (data_root or load_settings().data_root).rstrip("/")
        self.model_name = model_name
        self.role_arn = role_arn
        self.instance_type = instance_type
        self.instance_count = instance_count
        self._image_uri = image_uri

    # --- clients and locations --------------------------------------------------------------

    @cached_property
    def s3(self) -> BaseClient:
        """An S3 client of the same connection (archives, weights history, feedback)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify,
                      config=self.config).get_conn()

    def _s3_object(self, uri: str) -> bytes | None:
        """The object's bytes, or ``None`` if it does not exist."""
        from botocore.exceptions import ClientError

        bucket, key = split_s3(uri)
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise

    @property
    def image_uri(self) -> str:
        from include.registry.sagemaker_registry import huggingface_inference_image_uri

        if self._image_uri is None:
            self._image_uri = huggingface_inference_image_uri(self.conn.meta.region_name, self.instance_type)
        return self._image_uri

    def _exists(self, describe: Any, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            describe(name)
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ValidationException":  # SageMaker's "Could not find …"
                return False
            raise

    # --- models and configs ---------------------------------------------------------------------

    def ensure_model(self, model_version: str, int8: bool = False) -> str:
        """The SageMaker model serving ``model_version`` (created with its archive unless it exists)."""
        from include.registry.sagemaker_registry import SageMakerModelRegistry
        from include.serving.sagemaker import model_name, model_request, write_model_archive

        name = model_name(self.model_name, model_version, int8)
        if self._exists(self.describe_model, name):
            return name
        if not self.role_arn:
            raise ValueError("role_arn: a SageMaker execution role is needed to create a model "
                             "(Airflow Variable reviewflow_sagemaker_role_arn)")
        source = SageMakerModelRegistry(self.conn, self.model_name).get_version(model_version).model_uri
        archive = f"{self.data_root}/endpoint/{self.endpoint_name}/models/{name}/model.tar.gz"
        with tempfile.TemporaryFile() as original, tempfile.TemporaryFile() as repacked:
            # Rebuilt on a retry too (the archive is deterministic); an S3 object appears whole or not at all.
            self.s3.download_fileobj(*split_s3(source), original)
            original.seek(0)
            write_model_archive(original, repacked, model_version, int8)
            repacked.seek(0)
            self.s3.upload_fileobj(repacked, *split_s3(archive))
        self.log.info("creating SageMaker model %s for %s v%s%s",
                      name, self.model_name, model_version, " (int8)" * int8)
        self.create_model(model_request(name, self.image_uri, archive, self.role_arn, model_version))
        return name

    def ensure_endpoint_config(self, variants: Sequence[VariantSpec]) -> str:
        """The endpoint config holding ``variants`` (models and config created unless they exist)."""
        from include.serving.control import check_specs
        from include.serving.sagemaker import capture_uri, endpoint_config_request

        check_specs(variants)
        triples = [(spec.name, self.ensure_model(spec.model_version, spec.int8), spec.weight) for spec in variants]
        capture = capture_uri(self.data_root, self.endpoint_name)
        request = endpoint_config_request(self.endpoint_name, triples, self.instance_type, self.instance_count, capture)
        if not self._exists(self.describe_endpoint_config, request["EndpointConfigName"]):
            self.create_endpoint_config(request)
        return request["EndpointConfigName"]

    def endpoint_request(self, config_name: str) -> tuple[str, dict[str, Any]]:
        """``("create" | "update" | "none", request)`` to put the endpoint on ``config_name``."""
        request = {"EndpointName": self.endpoint_name, "EndpointConfigName": config_name}
        if not self._exists(self.describe_endpoint, self.endpoint_name):
            return "create", request
        described = self.describe_endpoint(self.endpoint_name)
        if described["EndpointStatus"] == "Failed":
            reason = described.get("FailureReason", "no reason given")
            raise ValueError(f"endpoint {self.endpoint_name} is Failed ({reason}); SageMaker cannot update a failed "
                             "endpoint: delete it, then deploy again")
        if described["EndpointStatus"] in ("Creating", "Updating", "SystemUpdating"):
            self.wait_in_service()  # SageMaker refuses an update while one is in progress
            described = self.describe_endpoint(self.endpoint_name)
        return ("none" if described["EndpointConfigName"] == config_name else "update"), request

    def wait_in_service(self, delay: int = 30, max_attempts: int = 120) -> None:
        self.get_waiter("endpoint_in_service").wait(
            EndpointName=self.endpoint_name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )

    # --- weights generations ----------------------------------------------------------------------

    @property
    def history_uri(self) -> str:
        from include.serving.sagemaker import weights_history_uri

        return weights_history_uri(self.data_root, self.endpoint_name)

    def weights_history(self) -> WeightsHistory:
        from include.serving.sagemaker import WeightsHistory

        stored = self._s3_object(self.history_uri)
        return WeightsHistory() if stored is None else WeightsHistory.from_json(stored)

    def record_generation(self) -> EndpointDescription:
        """After a change is in service: append a weights generation unless the weights are the current ones."""
        from include.serving.sagemaker import current_weights

        history = self.weights_history()
        updated = history.advanced(current_weights(self.describe_endpoint(self.endpoint_name)), dt.datetime.now(dt.UTC))
        if updated is not history:
            bucket, key = split_s3(self.history_uri)
            self.s3.put_object(Bucket=bucket, Key=key, Body=updated.to_json())
        return self.describe()

    # --- the EndpointHook interface -----------------------------------------------------------

    def describe(self) -> EndpointDescription:
        from include.serving.sagemaker import current_weights

        described = self.describe_endpoint(self.endpoint_name)
        variants = []
        for name, weight in current_weights(described).items():
            version, int8 = parse_variant_name(name)
            variants.append(VariantStatus(name, version, int8, weight))
        return EndpointDescription(
            self.endpoint_name, "aws", described["EndpointStatus"], described["EndpointArn"],
            self.weights_history().weights_generation, tuple(variants),
        )

    def deploy(self, variants: Sequence[VariantSpec]) -> EndpointDescription:
        action, request = self.endpoint_request(self.ensure_endpoint_config(variants))
        if action == "create":
            self.create_endpoint(request, wait_for_completion=False)
        elif action == "update":
            self.update_endpoint(request, wait_for_completion=False)
        self.wait_in_service()
        return self.record_generation()

    def request_weights(self, weights: Mapping[str, float]) -> bool:
        """Start ``UpdateEndpointWeightsAndCapacities`` unless the weights already hold; ``True`` if started."""
        from include.serving.sagemaker import current_weights

        current = current_weights(self.describe_endpoint(self.endpoint_name))
        target = updated_weights(current, weights)
        if target == current:
            return False
        self.conn.update_endpoint_weights_and_capacities(
            EndpointName=self.endpoint_name,
            DesiredWeightsAndCapacities=[{"VariantName": name, "DesiredWeight": w} for name, w in target.items()],
        )
        return True

    def set_weights(self, weights: Mapping[str, float]) -> EndpointDescription:
        if self.request_weights(weights):
            self.wait_in_service()
        return self.record_generation()

    def add_variant(self, model_version: str, weight: float = 0.0, int8: bool = False) -> EndpointDescription:
        current = self.describe()
        new = VariantSpec(model_version, weight, int8)
        return current if new.name in current.weights else self.deploy([*current.specs(), new])

    def remove_variant(self, variant: str) -> EndpointDescription:
        current = self.describe()
        if variant not in current.weights:
            return current
        return self.deploy([spec for spec in current.specs() if spec.name != variant])

    def feedback_reader(self) -> FeedbackReader:
        from include.serving.s3_feedback import S3FeedbackReader, feedback_uri
        from include.serving.sagemaker import capture_uri

        return S3FeedbackReader(self.s3, feedback_uri(self.data_root, self.endpoint_name),
                                capture_uri(self.data_root, self.endpoint_name), self.endpoint_name, self.history_uri)

    def reward_writer(self) -> S3RewardWriter:
        """How the client side records rewards on aws."""
        from include.serving.s3_feedback import S3RewardWriter, feedback_uri

        return S3RewardWriter(self.s3, feedback_uri(self.data_root, self.endpoint_name))

    def ensure_feedback_tables(self, database: str, workgroup: str, output_location: str) -> list[str]:
        """Create the Athena tables over reward events and Data Capture and the view joining them; the query ids."""
        from airflow.providers.amazon.aws.hooks.athena import AthenaHook

        from include.serving.s3_feedback import athena_feedback_statements

        athena = AthenaHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify,
                            config=self.config)
        ids = []
        for statement in athena_feedback_statements(database, self.data_root, self.endpoint_name):
            query_id = athena.run_query(
                statement, {"Database": database}, {"OutputLocation": output_location}, workgroup=workgroup
            )
            state = athena.poll_query_status(query_id, sleep_time=2)
            if state != "SUCCEEDED":
                raise RuntimeError(f"Athena query {query_id} ended {state}: {statement.splitlines()[0]}")
            ids.append(query_id)
        return ids
