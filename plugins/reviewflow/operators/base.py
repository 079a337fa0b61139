"""The connection of every reviewflow operator whose work reaches AWS (on the ``aws`` backend, or for an
``s3://`` location), taken the way the Amazon provider's ``AwsBaseOperator`` subclasses take it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from reviewflow.backends import storage_for
from reviewflow.hooks.storage import Storage
from reviewflow.lineage import ReportsLineage

AWS_TEMPLATE_FIELDS: tuple[str, ...] = ("aws_conn_id", "region_name")


class AwsConnectedOperator(ReportsLineage, BaseOperator):
    """An operator whose every AWS call — storage (run summaries, reports, seals), registry, endpoint, jobs,
    SNS pages — goes through ``aws_conn_id``; like every reviewflow operator it reports the datasets it read
    and wrote to OpenLineage (:class:`~reviewflow.lineage.ReportsLineage`).

    There is no silent ``aws_default``: the DAGs' ``default_args`` give every task the connection the settings
    name (the Airflow Variable ``reviewflow_aws_conn_id``, rendered when the task runs), and an operator built
    outside a DAG is given one.  The subclasses of the Amazon provider's operators take ``aws_conn_id`` the
    same way: a required argument, where the provider's default is ``aws_default``.

    :param aws_conn_id: the Airflow connection of every AWS call; ``None``: boto3's default credentials. (templated)
    :param region_name: the AWS region of every call; ``None``: the connection's. (templated)
    """

    template_fields: Sequence[str] = AWS_TEMPLATE_FIELDS

    def __init__(self, *, aws_conn_id: str | None, region_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    @property
    def aws_connection(self) -> dict[str, str | None]:
        """``aws_conn_id`` and ``region_name`` as the keyword arguments of the helpers that make AWS calls."""
        return {"aws_conn_id": self.aws_conn_id, "region_name": self.region_name}

    def storage(self, uri: str) -> Storage:
        """The storage able to read and write ``uri``, through this operator's connection."""
        return storage_for(uri, **self.aws_connection)

