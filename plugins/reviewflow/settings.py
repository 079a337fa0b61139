"""The AWS settings of a running task, read from Airflow Variables (``reviewflow_<field>``).

The connection every AWS call goes through is the setting ``reviewflow_aws_conn_id``: the DAGs take it as
the default ``aws_conn_id`` of every task (:data:`AWS_CONN_ID_TEMPLATE` in ``DEFAULT_ARGS``), and code
outside a task (callbacks, the UI, scripts) reads it with :func:`aws_conn_id`.
"""

from __future__ import annotations

from airflow.sdk import Variable

from include.config import AWS_DEFAULTS, AwsSettings, Settings, aws_settings

AWS_CONN_ID_VARIABLE = "reviewflow_aws_conn_id"
# The setting as a Jinja template: rendered when a task runs, so a DAG file reads no Variable when parsed.
AWS_CONN_ID_TEMPLATE = f"{{{{ var.value.get('{AWS_CONN_ID_VARIABLE}', '{AWS_DEFAULTS['aws_conn_id']}') }}}}"


def load_aws_settings(settings: Settings) -> AwsSettings:
    """Read :class:`~include.config.AwsSettings` from Airflow Variables; call only inside a running task."""
    return aws_settings(settings, lambda name, default: Variable.get(name, default=default))


def aws_conn_id() -> str:
    """The connection the settings name for AWS calls (the Variable ``reviewflow_aws_conn_id``)."""
    return Variable.get(AWS_CONN_ID_VARIABLE, default=AWS_DEFAULTS["aws_conn_id"])
