"""Typed settings: the only module that reads environment variables.

Two kinds of setting:

* process settings (``REVIEWFLOW_*`` environment variables) decide the backend and
  where data lives; they are cheap and safe to read while a DAG file is parsed;
* AWS settings (:class:`AwsSettings`) come from Airflow Variables (``reviewflow_*``), which the
  plugins layer reads inside running tasks (``reviewflow.settings.load_aws_settings``) and hands to
  :func:`aws_settings`: this package never imports Airflow.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from include.errors import BadInputError

Backend = Literal["local", "aws"]
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNBOOK_URL = (REPO_ROOT / "docs" / "runbook.md").as_uri()


class ConfigError(BadInputError):
    """A setting is missing or has an invalid value."""


@dataclass(frozen=True)
class Settings:
    """Process-wide settings read from ``REVIEWFLOW_*`` environment variables.

    :param backend: ``local`` (embedded engines) or ``aws`` (S3, Athena, SageMaker, EMR).
    :param data_root: root URI of every zone: a folder path, ``file://`` or ``s3://bucket/prefix``.
    :param alert_log: file the local failure notifier appends JSON lines to.
    :param alert_webhook_url: optional Slack-compatible incoming-webhook URL for alerts.
    :param sns_topic_arn: optional SNS topic for alerts (``aws`` backend).
    :param deequ_jar: the Deequ jar for the quality gate: a local path, or an ``s3://`` URI on ``aws``
        (required there for ``quality_engine=deequ`` on SageMaker Processing).
    :param airflow_host: address ``make airflow`` binds the API server (UI) to.
    :param airflow_port: port of the API server under ``make airflow``.
    :param mlflow_port: port of the MLflow registry UI under ``make airflow`` (always on 127.0.0.1).
    :param endpoint_port: preferred port of the local model endpoint (``make serve``, the rollout); a free
        one is taken when it is busy.
    :param endpoint_token: bearer token of the local endpoint's admin API; unset: a generated
        ``admin-token`` file (mode 0600) in the endpoint's folder.  Never part of ``repr``.
    :param mlflow_tracking_uri: an MLflow tracking server for the ``local`` registry (the team stack's
        ``http://mlflow:5000``); unset: MLflow on SQLite under the data root.
    :param runbook_url: where on-call reads docs/runbook.md (e.g. the repository's web view of it); every page
        links its section. Default: the file in this checkout.
    :param deadline_alerts: whether the DAGs carry their deadline alerts (``REVIEWFLOW_DEADLINE_ALERTS=on|off``,
        default on). ``make run`` and the DAG tests turn them off: Airflow 3.3.2's ``dag.test()`` (and so
        ``airflow dags test``) cannot finish a successful run of a DAG that has one.
    :param allowed_roots: the folders and ``s3://`` prefixes a run may read a source or a snapshot from
        (``include/allowed_roots.py``); default the data root and the repository's ``.data/``.
    """

    backend: Backend
    data_root: str
    alert_log: Path
    alert_webhook_url: str | None
    sns_topic_arn: str | None
    deequ_jar: str | None = None
    airflow_host: str = "127.0.0.1"
    airflow_port: int = 8080
    mlflow_port: int = 5000
    endpoint_port: int = 8090
    endpoint_token: str | None = field(default=None, repr=False)
    mlflow_tracking_uri: str | None = None
    runbook_url: str = DEFAULT_RUNBOOK_URL
    deadline_alerts: bool = True
    allowed_roots: tuple[str, ...] = ()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate :class:`Settings` from ``environ`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    backend = env.get("REVIEWFLOW_BACKEND", "local").strip().lower()
    if backend not in ("local", "aws"):
        raise ConfigError(f"REVIEWFLOW_BACKEND must be 'local' or 'aws', got {backend!r}")
    default_root = str(REPO_ROOT / ".data")
    data_root = env.get("REVIEWFLOW_DATA_ROOT", "").strip() or default_root
    if backend == "aws" and not data_root.startswith("s3://"):
        raise ConfigError(f"REVIEWFLOW_DATA_ROOT must be an s3:// URI with the aws backend, got {data_root!r}")
    local_root = REPO_ROOT / ".data" if data_root.startswith("s3://") else Path(data_root.removeprefix("file://"))
    return Settings(
        backend=backend,  # type: ignore[arg-type]
        data_root=data_root.rstrip("/"),
        alert_log=Path(env.get("REVIEWFLOW_ALERT_LOG", "") or local_root / "alerts" / "alerts.jsonl"),
        alert_webhook_url=env.get("REVIEWFLOW_ALERT_WEBHOOK_URL") or None,
        sns_topic_arn=env.get("REVIEWFLOW_SNS_TOPIC_ARN") or None,
        deequ_jar=env.get("REVIEWFLOW_DEEQU_JAR", "").strip() or None,
        airflow_host=env.get("REVIEWFLOW_AIRFLOW_HOST", "").strip() or "127.0.0.1",
        airflow_port=_port(env, "REVIEWFLOW_AIRFLOW_PORT", 8080),
        mlflow_port=_port(env, "REVIEWFLOW_MLFLOW_PORT", 5000),
        endpoint_port=_port(env, "REVIEWFLOW_ENDPOINT_PORT", 8090),
        endpoint_token=env.get("REVIEWFLOW_ENDPOINT_TOKEN") or None,
        mlflow_tracking_uri=_tracking_uri(env),
        runbook_url=env.get("REVIEWFLOW_RUNBOOK_URL", "").strip() or DEFAULT_RUNBOOK_URL,
        deadline_alerts=_switch(env, "REVIEWFLOW_DEADLINE_ALERTS", True),
        allowed_roots=_allowed_roots(env, data_root.rstrip("/")),
    )


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text not in ("on", "off"):
        raise ConfigError(f"{name} must be 'on' or 'off', got {text!r}")
    return text == "on"


def _tracking_uri(env: Mapping[str, str]) -> str | None:
    uri = env.get("REVIEWFLOW_MLFLOW_TRACKING_URI", "").strip().rstrip("/")
    if uri and not uri.startswith(("http://", "https://")):
        raise ConfigError(f"REVIEWFLOW_MLFLOW_TRACKING_URI must be an http(s):// MLflow server, got {uri!r}")
    return uri or None


def _allowed_roots(env: Mapping[str, str], data_root: str) -> tuple[str, ...]:
    """``REVIEWFLOW_ALLOWED_ROOTS``: comma-separated absolute folders or ``s3://bucket[/prefix]`` URIs;
    unset or empty, the data root and the repository's ``.data/`` (where ``make sample`` and
    ``make real-data`` write)."""
    text = env.get("REVIEWFLOW_ALLOWED_ROOTS", "").strip()
    if not text:
        return tuple(dict.fromkeys((data_root.removeprefix("file://"), str(REPO_ROOT / ".data"))))
    roots = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        root = entry.removeprefix("file://")
        if root.startswith("s3://") and root.removeprefix("s3://").strip("/"):
            roots.append(root.rstrip("/"))
        elif not root.startswith("s3://") and Path(root).is_absolute():
            roots.append(root.rstrip("/") or "/")
        else:
            raise ConfigError(
                f"REVIEWFLOW_ALLOWED_ROOTS entries must be absolute folders or s3:// URIs, got {entry!r}"
            )
    return tuple(roots)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{name} must be a TCP port (1-65535), got {text!r}")
    return int(text)


@dataclass(frozen=True)
class AwsSettings:
    """AWS resources, from Airflow Variables named ``reviewflow_<field>``.

    :param aws_conn_id: Airflow connection with the credentials and region.
    :param athena_database: Glue database holding the raw and curated tables.
    :param athena_workgroup: Athena workgroup queries run in.
    :param athena_output_location: ``s3://`` prefix for Athena query results.
    :param sagemaker_role_arn: execution role for SageMaker jobs.
    :param processing_instance_type: instance type of SageMaker Processing jobs.
    :param training_instance_type: instance type of SageMaker training jobs.
    :param emr_application_id: EMR Serverless application for Spark jobs (optional).
    :param emr_execution_role_arn: job role for EMR Serverless (optional).
    """

    aws_conn_id: str
    athena_database: str
    athena_workgroup: str
    athena_output_location: str
    sagemaker_role_arn: str
    processing_instance_type: str
    training_instance_type: str
    emr_application_id: str | None
    emr_execution_role_arn: str | None


AWS_DEFAULTS: dict[str, str | None] = {
    "aws_conn_id": "aws_default",
    "athena_database": "reviewflow",
    "athena_workgroup": "primary",
    "athena_output_location": None,
    "sagemaker_role_arn": None,
    "processing_instance_type": "ml.m5.xlarge",
    "training_instance_type": "ml.g5.xlarge",
    "emr_application_id": None,
    "emr_execution_role_arn": None,
}
AWS_OPTIONAL = {"emr_application_id", "emr_execution_role_arn", "sagemaker_role_arn"}


def aws_settings(settings: Settings, lookup: Callable[[str, str | None], str | None]) -> AwsSettings:
    """:class:`AwsSettings` from ``lookup(name, default)`` of each ``reviewflow_<field>`` (Airflow's ``Variable.get``).

    ``athena_output_location`` defaults to ``<data root>/athena-results``.
    """
    values: dict[str, str | None] = {}
    for field, default in AWS_DEFAULTS.items():
        if field == "athena_output_location":
            default = f"{settings.data_root}/athena-results"
        values[field] = lookup(f"reviewflow_{field}", default)
        if values[field] is None and field not in AWS_OPTIONAL:
            raise ConfigError(f"Airflow Variable reviewflow_{field} is required with the aws backend")
    return AwsSettings(**values)  # type: ignore[arg-type]
