"""The aws ingestion path against moto: the Athena calls made and their idempotency tokens."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.athena.models import QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID

from include.ingestion.athena import request_token
from include.sample_data import SampleSpec, write_sample
from tests.plugins.conftest import BUCKET, REGION


def queue_athena_results(rows: list[tuple[str, int]]) -> None:
    """Results moto hands out, in start order: three statements, the counts, the view."""
    backend = athena_backends[DEFAULT_ACCOUNT_ID][REGION]
    empty = QueryResults(rows=[], column_info=[])
    header = {"Data": [{"VarCharValue": "outcome"}, {"VarCharValue": "row_count"}]}
    counts = QueryResults(
        rows=[header] + [{"Data": [{"VarCharValue": o}, {"VarCharValue": str(n)}]} for o, n in rows],
        column_info=[{"Name": "outcome", "Type": "varchar"}, {"Name": "row_count", "Type": "bigint"}],
    )
    backend.query_results_queue.extend([empty, empty, empty, counts, empty])


def upload_sample(tmp_path: Path) -> str:
    local = tmp_path / "reviews.tsv.gz"
    write_sample(local, SampleSpec(rows=200))
    boto3.client("s3", region_name=REGION).upload_file(str(local), BUCKET, "landing/reviews.tsv.gz")
    return f"s3://{BUCKET}/landing/reviews.tsv.gz"


def test_aws_dag_runs_athena_statements_in_order_with_run_tokens(aws, tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.conftest import DAGS_FOLDER

    source = upload_sample(tmp_path)
    queue_athena_results([("accepted", 197), ("star_rating: not an integer 1..5", 3)])
    dag = DagBag(dag_folder=str(DAGS_FOLDER)).dags["reviews_ingest"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "stage_raw", "athena_create_raw_table", "athena_ctas_rejected", "athena_ctas_curated", "ingest",
        "quality_gate", "publish",
    ]

    # The gate's SageMaker/EMR submission has its own tests (test_quality_operator.py).
    dag_run = dag.test(run_conf={"source_uri": source}, mark_success_pattern="quality_gate")

    assert dag_run.state == "success", {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    starts = [params for op, params in aws if op == "StartQueryExecution"]
    queries = [p["QueryString"] for p in starts]
    assert queries[0].startswith("CREATE EXTERNAL TABLE IF NOT EXISTS reviews_db.raw_reviews_manual_")
    assert "RegexSerDe" in queries[0] and f"LOCATION 's3://{BUCKET}/reviewflow/raw/reviews/run=manual__" in queries[0]
    assert queries[1].startswith("CREATE TABLE reviews_db.reviews_rejected_") and "reject_reason IS NOT NULL" in queries[1]
    assert queries[2].startswith("CREATE TABLE reviews_db.reviews_curated_")
    assert "partitioned_by = ARRAY['product_category']" in queries[2]
    assert f"external_location = 's3://{BUCKET}/reviewflow/curated/reviews/snapshot=manual__" in queries[2]
    assert "GROUP BY 1" in queries[3]
    assert queries[4].startswith("CREATE OR REPLACE VIEW reviews_db.reviews_curated AS SELECT * FROM reviews_db.reviews_curated_")
    for params in starts:
        assert params["QueryExecutionContext"]["Database"] == "reviews_db"
        assert params["ResultConfiguration"]["OutputLocation"] == f"s3://{BUCKET}/reviewflow/athena-results"
        assert len(params["ClientRequestToken"]) == 64
    assert len({p["ClientRequestToken"] for p in starts}) == 5
    looked_up = [(p["DatabaseName"], p["Name"]) for op, p in aws if op == "GetTable"]
    suffix = queries[2].split()[2].removeprefix("reviews_db.reviews_curated_")
    assert looked_up == [("reviews_db", f"reviews_rejected_{suffix}"), ("reviews_db", f"reviews_curated_{suffix}")]

    staged = [p for op, p in aws if op == "CopyObject"]
    assert staged and staged[0]["Key"].startswith("reviewflow/raw/reviews/run=manual__")
    summary_key = next(p["Key"] for op, p in aws if op == "PutObject" and p["Key"].endswith("summary.json"))
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=summary_key)["Body"].read()
    ingest = json.loads(body)["ingest"]
    assert ingest["counts"]["accepted"] == 197 and ingest["counts"]["rejected"] == 3
    assert ingest["curated_uri"].startswith(f"s3://{BUCKET}/reviewflow/curated/reviews/snapshot=manual__")


def test_athena_token_is_stable_across_a_retry_and_changes_with_the_run(aws) -> None:
    from reviewflow.operators.ingest import RunScopedAthenaOperator

    operator = RunScopedAthenaOperator(task_id="athena_ctas_curated", query="SELECT 1", database="reviews_db",
                                       output_location=f"s3://{BUCKET}/athena-results", sleep_time=0)

    class TI:
        dag_id, task_id = "reviews_ingest", "athena_ctas_curated"

        def __init__(self, run_id: str, try_number: int) -> None:
            self.run_id, self.try_number = run_id, try_number

        def xcom_push(self, *args: Any, **kwargs: Any) -> None:
            pass

    for run_id, try_number in (("manual__1", 1), ("manual__1", 2), ("manual__2", 1)):
        operator.execute({"ti": TI(run_id, try_number), "task_instance": TI(run_id, try_number)})
    tokens = [p["ClientRequestToken"] for op, p in aws if op == "StartQueryExecution"]
    assert tokens[0] == tokens[1] == request_token("reviews_ingest", "manual__1", "athena_ctas_curated", "SELECT 1")
    assert tokens[2] != tokens[0]


def test_aws_backend_refuses_a_local_source(aws, tmp_path: Path) -> None:
    from include.ingestion.schema import SourceError
    from reviewflow.operators.ingest import StageRawReviewsOperator

    local = tmp_path / "reviews.tsv.gz"
    local.write_bytes(gzip.compress(b"x"))
    with pytest.raises(SourceError, match="aws backend reads sources from S3"):
        StageRawReviewsOperator(task_id="stage_raw", source_uri=str(local)).execute({})


def ctas_operator() -> Any:
    from reviewflow.operators.ingest import AthenaCtasOperator

    return AthenaCtasOperator(
        task_id="athena_ctas_curated", query="CREATE TABLE reviews_db.reviews_curated_r AS SELECT 1",
        table="reviews_curated_r",
        database="reviews_db", output_location=f"s3://{BUCKET}/athena-results", sleep_time=0,
    )


def ctas_context() -> dict[str, Any]:
    class TI:
        dag_id, task_id, run_id, try_number = "reviews_ingest", "athena_ctas_curated", "manual__r", 3

        def xcom_push(self, *args: Any, **kwargs: Any) -> None:
            pass

    return {"ti": TI(), "task_instance": TI()}


def test_ctas_runs_while_its_table_does_not_exist(aws) -> None:
    assert ctas_operator().execute(ctas_context())
    assert [op for op, _ in aws if op == "StartQueryExecution"] == ["StartQueryExecution"]


def test_ctas_rerun_keeps_the_table_an_earlier_attempt_created(aws) -> None:
    glue = boto3.client("glue", region_name=REGION)
    glue.create_database(DatabaseInput={"Name": "reviews_db"})
    glue.create_table(DatabaseName="reviews_db", TableInput={"Name": "reviews_curated_r"})

    assert ctas_operator().execute(ctas_context()) is None
    assert not [op for op, _ in aws if op == "StartQueryExecution"]

