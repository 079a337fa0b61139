"""The hook or client of the configured backend: storage for a URI, the model registry, the model endpoint.

Each takes the AWS connection as a required argument: on ``aws`` (or for an ``s3://`` URI) every call the
returned object makes goes through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.uris import is_s3
from reviewflow.hooks.storage import LocalStorage, S3StorageHook, Storage

if TYPE_CHECKING:
    from include.config import Settings
    from include.registry.base import ModelRegistry
    from reviewflow.hooks.endpoint import LocalEndpointHook, SageMakerEndpointHook


def storage_for(uri: str, aws_conn_id: str | None, *, region_name: str | None = None) -> Storage:
    """The storage able to read and write ``uri``: an ``s3://`` URI through the connection ``aws_conn_id``."""
    return S3StorageHook(aws_conn_id=aws_conn_id, region_name=region_name) if is_s3(uri) else LocalStorage()


def registry_for(
    settings: Settings, model_name: str, aws_conn_id: str | None, *, region_name: str | None = None
) -> ModelRegistry:
    """The model registry of ``settings.backend``: MLflow (``local``: SQLite under the data root, or the tracking
    server ``REVIEWFLOW_MLFLOW_TRACKING_URI`` names) or the SageMaker Model Registry (``aws``).

    :param model_name: the registered model (MLflow) / model package group (SageMaker).
    :param aws_conn_id: the connection of the ``aws`` backend's SageMaker client (the provider's ``SageMakerHook``).
    :param region_name: its region; ``None``: the connection's.
    """
    if settings.backend == "aws":
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        from include.registry.sagemaker_registry import SageMakerModelRegistry

        return SageMakerModelRegistry(SageMakerHook(aws_conn_id=aws_conn_id, region_name=region_name).conn, model_name)
    from include.registry.mlflow_registry import MlflowModelRegistry, registry_dir

    if settings.mlflow_tracking_uri:
        return MlflowModelRegistry(registry_dir(settings.data_root), model_name, tracking_uri=settings.mlflow_tracking_uri)
    return MlflowModelRegistry.for_data_root(settings.data_root, model_name)


def endpoint_hook_for(
    settings: Settings, endpoint_name: str, model_name: str, aws_conn_id: str | None, region_name: str | None = None,
    **aws_options: Any,
) -> LocalEndpointHook | SageMakerEndpointHook:
    """The endpoint hook of ``settings.backend``; ``aws_options`` (instances, image) go to the aws hook.

    On aws the models' execution role defaults to the Airflow Variable ``reviewflow_sagemaker_role_arn``
    (read here: call this inside a running task).
    """
    from reviewflow.hooks.endpoint import LocalEndpointHook, SageMakerEndpointHook

    if settings.backend == "aws":
        from reviewflow.settings import load_aws_settings

        aws_options.setdefault("role_arn", load_aws_settings(settings).sagemaker_role_arn)
        return SageMakerEndpointHook(endpoint_name=endpoint_name, data_root=settings.data_root, model_name=model_name,
                                     aws_conn_id=aws_conn_id, region_name=region_name, **aws_options)
    return LocalEndpointHook(endpoint_name, model_name, settings.data_root)
