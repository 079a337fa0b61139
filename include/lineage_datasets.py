"""OpenLineage dataset names of what reviewflow reads and writes, after the OpenLineage naming spec.

Storage: ``s3://bucket/key`` → namespace ``s3://bucket``, name ``key``; a local path (or ``file://``)
→ namespace ``file``, name the absolute path. A registered model version → namespace of its registry
(``mlflow`` locally, ``sagemaker`` for a model package group), name ``<model>/versions/<n>``. An
endpoint variant → namespace ``endpoint``, name ``<endpoint>/variants/<variant>``.
"""

from __future__ import annotations

from pathlib import Path

from include.config import Settings

# The local runs' OpenLineage events, one JSON line each, under the data root (the provider's file transport).
LINEAGE_EVENTS = "lineage/events.jsonl"


def storage_dataset(uri: str) -> tuple[str, str]:
    """(namespace, name) of a storage URI."""
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return f"s3://{bucket}", key.rstrip("/")
    return "file", uri.removeprefix("file://").rstrip("/")


# The namespace of each backend's model registry.
REGISTRY_NAMESPACES = {"local": "mlflow", "aws": "sagemaker"}


def model_version_dataset(registry: str, model_name: str, version: str) -> tuple[str, str]:
    """(namespace, name) of a registered model version."""
    return registry, f"{model_name}/versions/{version}"


def athena_table_dataset(region: str, database: str, table: str) -> tuple[str, str]:
    """(namespace, name) of a table (or view) of Athena's default data catalog."""
    return f"awsathena://athena.{region}.amazonaws.com", f"AwsDataCatalog.{database}.{table}"


def endpoint_variant_dataset(endpoint_name: str, variant_name: str) -> tuple[str, str]:
    """(namespace, name) of a production variant of an endpoint."""
    return "endpoint", f"{endpoint_name}/variants/{variant_name}"


def local_lineage_log(settings: Settings) -> Path | None:
    """Where the file transport appends the events of local runs; ``None`` for an S3 data root (use a real backend)."""
    if settings.data_root.startswith("s3://"):
        return None
    return Path(settings.data_root.removeprefix("file://")) / LINEAGE_EVENTS
