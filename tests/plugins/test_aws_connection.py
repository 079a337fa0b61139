"""The connection id reaches every AWS call.

Every aws path is tested under :func:`tests.conftest.aws_connection` (the ``aws`` fixture, and the aws tests
of the features, training, notifier and pyspark-env modules): moto reachable only through the connection
``reviewflow_test_aws``, which the setting ``reviewflow_aws_conn_id`` names; no ``aws_default`` is defined and
there are no credentials anywhere else, so a hook built with any other connection fails, and on leaving each
test checks that every AWS call the code made was signed with the connection's credentials. The aws paths:
the ingest DAG end to end (stage, Athena, commit, publish; test_ingest_aws.py), the quality gate's SageMaker
Processing and EMR jobs (test_quality_operator.py), the feature job (test_features_operator.py), training and
evaluation on SageMaker (test_training_operator.py), registration and approval (test_registry_aws.py), the
endpoint (test_endpoint_aws.py), the rollout (test_rollout_aws.py), the step cache on S3 (test_step_cache.py),
the UI's report page (test_ui.py), pages to SNS (test_notifiers.py) and ``make pyspark-env``'s upload.

This module checks the rest: that the setup is strict (a hook without the connection cannot reach AWS, and
a call the code makes otherwise is caught), and that every task of every DAG on the aws backend takes the
connection the setting names.
"""

from __future__ import annotations

import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from botocore.exceptions import NoCredentialsError

from include.config import REPO_ROOT
from reviewflow.operators.base import AWS_TEMPLATE_FIELDS
from tests.conftest import AWS_CONN_ID, TEST_CLIENT_KEY, AwsCalls, render_setting
from tests.dags.conftest import DAGS_FOLDER
from tests.plugins.conftest import BUCKET


def test_only_the_named_connection_reaches_aws(aws: AwsCalls) -> None:
    assert S3Hook(aws_conn_id=AWS_CONN_ID).check_for_bucket(BUCKET)
    for elsewhere in ("aws_default", None):
        with pytest.raises(NoCredentialsError):
            S3Hook(aws_conn_id=elsewhere).check_for_bucket(BUCKET)


def test_a_call_the_code_makes_without_the_connection_is_caught(aws: AwsCalls) -> None:
    # Code under plugins/ calling AWS with boto3's own default session (the tests' client credentials).
    code = compile("import boto3\nboto3.client('s3').list_buckets()\n", str(REPO_ROOT / "plugins" / "reviewflow" / "x.py"), "exec")
    exec(code, {})
    assert aws.not_through_the_connection() == [("ListBuckets", TEST_CLIENT_KEY)]
    aws.signed.clear()  # caught: the fixture would fail the test on leaving


def test_every_task_on_aws_takes_the_connection_the_setting_names(aws: AwsCalls) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dags = DagBag(dag_folder=str(DAGS_FOLDER)).dags
    assert set(dags) == {"reviews_ingest", "reviews_train", "reviews_rollout"}
    for dag in dags.values():
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id} ({type(task).__name__})"
            assert set(AWS_TEMPLATE_FIELDS) <= set(task.template_fields), where
            assert render_setting(task, "aws_conn_id") == AWS_CONN_ID, where
