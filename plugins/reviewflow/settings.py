"""The AWS settings of a running task, read from Airflow Variables (``reviewflow_<field>``)."""

from __future__ import annotations

from airflow.sdk import Variable

from include.config import AwsSettings, Settings, aws_settings


def load_aws_settings(settings: Settings) -> AwsSettings:
    """Read :class:`~include.config.AwsSettings` from Airflow Variables; call only inside a running task."""
    return aws_settings(settings, lambda name, default: Variable.get(name, default=default))
