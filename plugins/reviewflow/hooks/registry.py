"""The model registry of the configured backend: MLflow (``local``: SQLite under the data root, or the
tracking server ``REVIEWFLOW_MLFLOW_TRACKING_URI`` names) or the SageMaker Model Registry (``aws``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from include.config import Settings
    from include.registry.base import ModelRegistry


def registry_for(
    settings: Settings, model_name: str, aws_conn_id: str | None, *, region_name: str | None = None
) -> ModelRegistry:
    """The registry behind ``settings.backend``.

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
