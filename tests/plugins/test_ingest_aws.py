"""The aws ingestion path against moto: the Athena calls made and their idempotency tokens."""

from __future__ import annotations

import gzip
import json
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.athena.models import QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID

from include.ingestion.athena import request_token
from include.sample_data import SampleSpec, write_sample
from tests.conftest import AWS_CONN_ID, task_context
from tests.plugins.conftest import BUCKET, REGION


def count_results(rows: list[tuple[str, str | None, int]]) -> QueryResults:
    """The result of ``count_reviews.sql`` as Athena returns it (no ``VarCharValue`` for NULL)."""
    header = {"Data": [{"VarCharValue": "outcome"}, {"VarCharValue": "excluded_category"}, {"VarCharValue": "row_count"}]}
    return QueryResults(
        rows=[header] + [
            {"Data": [{"VarCharValue": o}, {} if c is None else {"VarCharValue": c}, {"VarCharValue": str(n)}]}
            for o, c, n in rows
        ],
        column_info=[{"Name": "outcome", "Type": "varchar"}, {"Name": "excluded_category", "Type": "varchar"},
                     {"Name": "row_count", "Type": "bigint"}],
    )


def queue_athena_results(rows: list[tuple[str, str | None, int]]) -> None:
    """Results moto hands out, in start order: three statements, the counts, the view."""
    empty = QueryResults(rows=[], column_info=[])
    athena_backends[DEFAULT_ACCOUNT_ID][REGION].query_results_queue.extend([empty, empty, empty, count_results(rows), empty])


def upload_sample(tmp_path: Path) -> str:
    local = tmp_path / "reviews.tsv.gz"
    write_sample(local, SampleSpec(rows=200))
    boto3.client("s3", region_name=REGION).upload_file(str(local), BUCKET, "landing/reviews.tsv.gz")
    return f"s3://{BUCKET}/landing/reviews.tsv.gz"


def test_aws_dag_runs_athena_statements_in_order_with_run_tokens(aws, tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.conftest import DAGS_FOLDER

    source = upload_sample(tmp_path)
    queue_athena_results([("accepted", None, 197), ("star_rating: not an integer 1..5", None, 3)])
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
    assert "GROUP BY 1, 2" in queries[3]
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


STAGED = {"source_uri": f"s3://{BUCKET}/landing/reviews.tsv.gz", "format": "tsv", "latest_review_date": "2026-11-26"}


def test_athena_token_is_stable_across_a_retry_and_changes_with_the_run(aws) -> None:
    from reviewflow.operators.ingest import RunScopedAthenaOperator

    queries = []
    for run_id, try_number in (("manual__1", 1), ("manual__1", 2), ("manual__2", 1)):
        operator = RunScopedAthenaOperator(task_id="athena_create_raw_table", statement="create_raw_table", staged=STAGED,
                                           database="reviews_db", output_location=f"s3://{BUCKET}/athena-results", sleep_time=0,
                                           aws_conn_id=AWS_CONN_ID)
        context = task_context("reviews_ingest", "athena_create_raw_table", run_id, try_number)
        operator.render_template_fields(context)
        queries.append(operator.query)
        operator.execute(context)
    assert queries[0].startswith("CREATE EXTERNAL TABLE IF NOT EXISTS reviews_db.raw_reviews_manual_1 ")
    tokens = [p["ClientRequestToken"] for op, p in aws if op == "StartQueryExecution"]
    assert tokens[0] == tokens[1] == request_token("reviews_ingest", "manual__1", "athena_create_raw_table", queries[0])
    assert tokens[2] != tokens[0]


def test_aws_backend_refuses_a_local_source(aws, tmp_path: Path) -> None:
    from include.ingestion.schema import SourceError
    from reviewflow.operators.ingest import StageRawReviewsOperator

    local = tmp_path / "reviews.tsv.gz"
    local.write_bytes(gzip.compress(b"x"))
    context = task_context("reviews_ingest", "stage_raw", "manual__r")
    with pytest.raises(SourceError, match="aws backend reads sources from S3"):
        StageRawReviewsOperator(task_id="stage_raw", source_uri=str(local), aws_conn_id=AWS_CONN_ID).execute(context)
    summary = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key="reviewflow/reports/manual__r/summary.json")
    ingest = json.loads(summary["Body"].read())["ingest"]
    assert ingest["status"] == "failed" and "aws backend reads sources from S3" in ingest["error"]


def test_commit_without_rows_in_the_categories_names_asked_and_present_ones(aws) -> None:
    from include.ingestion.counts import RejectedShareError
    from reviewflow.operators.ingest import AthenaCommitOperator

    athena_backends[DEFAULT_ACCOUNT_ID][REGION].query_results_queue.append(count_results(
        [("excluded", "Books", 120), ("excluded", "Toys", 80), ("star_rating: not an integer 1..5", None, 2)]
    ))
    operator = AthenaCommitOperator(task_id="ingest", staged=STAGED, categories=["Bookz"], aws_conn_id=AWS_CONN_ID)
    context = ctas_context()
    with pytest.raises(RejectedShareError) as error:
        operator.execute(context)
    assert str(error.value) == (
        f"s3://{BUCKET}/landing/reviews.tsv.gz: no rows in the requested categories ['Bookz'] (param categories); "
        "the file's 200 valid rows are in Books (120), Toys (80)"
    )
    assert error.value.counts.excluded_by_category == {"Books": 120, "Toys": 80}


class FakeAthena:
    """Athena's token semantics, which moto lacks: a known token returns its execution, whatever its state.

    Queries end in the states queued in ``outcomes`` (default SUCCEEDED); a failed CTAS lists
    the files it wrote in a data manifest, as Athena does.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, outcomes: list[str], written: list[str]) -> None:
        from airflow.providers.amazon.aws.hooks.athena import AthenaHook

        self.outcomes, self.written = outcomes, written
        self.by_token: dict[str, str] = {}
        self.state: dict[str, str] = {}
        for name in ("run_query", "poll_query_status", "check_query_status", "get_query_info", "get_state_change_reason"):
            monkeypatch.setattr(AthenaHook, name, getattr(self, name))

    def run_query(self, query: str, query_context: Any, result_configuration: Any, client_request_token: str,
                  workgroup: str = "primary") -> str:
        token = client_request_token
        if token not in self.by_token:
            query_id = f"q{len(self.by_token)}"
            self.by_token[token] = query_id
            self.state[query_id] = self.outcomes.pop(0) if self.outcomes else "SUCCEEDED"
            if self.state[query_id] == "FAILED":
                manifest = f"reviewflow/athena-results/tables/{query_id}-manifest.csv"
                body = "\n".join(f"s3://{BUCKET}/{key}" for key in self.written)
                s3 = boto3.client("s3", region_name=REGION)
                s3.put_object(Bucket=BUCKET, Key=manifest, Body=body.encode())
                for key in self.written:
                    s3.put_object(Bucket=BUCKET, Key=key, Body=b"partial")
        return self.by_token[token]

    def poll_query_status(self, query_id: str, **kwargs: Any) -> str:
        return self.state[query_id]

    def check_query_status(self, query_id: str, use_cache: bool = False) -> str:
        return self.state[query_id]

    def get_query_info(self, query_id: str, use_cache: bool = False) -> dict[str, Any]:
        manifest = f"s3://{BUCKET}/reviewflow/athena-results/tables/{query_id}-manifest.csv"
        return {"QueryExecution": {"Statistics": {"DataManifestLocation": manifest}}}

    def get_state_change_reason(self, query_id: str) -> str:
        return "HIVE_CURSOR_ERROR: transient"


ctas_context = partial(task_context, "reviews_ingest", "athena_ctas_curated", "manual__r")  # ctas_context(try_number=…)


def ctas_operator() -> Any:
    """The curated CTAS of run ``manual__r``, rendered: table ``reviews_curated_manual_r`` at ``snapshot=manual__r/``."""
    from reviewflow.operators.ingest import AthenaCtasOperator

    operator = AthenaCtasOperator(
        task_id="athena_ctas_curated",
        dataset="curated",
        staged=STAGED,
        database="reviews_db",
        output_location=f"s3://{BUCKET}/athena-results",
        sleep_time=0,
        aws_conn_id=AWS_CONN_ID,
    )
    operator.render_template_fields(ctas_context())
    assert (operator.table, operator.location) == ("reviews_curated_manual_r", f"{SNAPSHOT_LOCATION}/")
    assert operator.query.startswith("CREATE TABLE reviews_db.reviews_curated_manual_r")
    return operator


SNAPSHOT_LOCATION = f"s3://{BUCKET}/reviewflow/curated/reviews/snapshot=manual__r"


def keys_under(prefix: str) -> list[str]:
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_ctas_runs_while_its_table_does_not_exist(aws) -> None:
    assert ctas_operator().execute(ctas_context())
    assert [op for op, _ in aws if op == "StartQueryExecution"] == ["StartQueryExecution"]


def test_ctas_rerun_keeps_the_table_an_earlier_attempt_created(aws) -> None:
    glue = boto3.client("glue", region_name=REGION)
    glue.create_database(DatabaseInput={"Name": "reviews_db"})
    glue.create_table(DatabaseName="reviews_db", TableInput={"Name": "reviews_curated_manual_r"})

    assert ctas_operator().execute(ctas_context(try_number=3)) is None
    assert not [op for op, _ in aws if op == "StartQueryExecution"]


def test_failed_ctas_is_cleaned_and_the_retry_runs_a_new_query(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowException

    partial = ["reviewflow/curated/reviews/snapshot=manual__r/product_category=Books/q0-part-0"]
    athena = FakeAthena(monkeypatch, outcomes=["FAILED"], written=[*partial, "reviewflow/elsewhere/not-ours"])

    with pytest.raises(AirflowException, match="FAILED"):
        ctas_operator().execute(ctas_context(try_number=1))
    assert keys_under("reviewflow/curated/") == []  # the failed query's files under its location are gone
    assert keys_under("reviewflow/elsewhere/") == ["reviewflow/elsewhere/not-ours"]

    assert ctas_operator().execute(ctas_context(try_number=2)) == "q1"
    assert len(athena.by_token) == 2  # try 2 met the failed q0 under its token, then started one new query
    assert ctas_operator().execute(ctas_context(try_number=3)) == "q1"  # a later try reattaches to q1
    assert len(athena.by_token) == 2


def test_retry_waits_for_a_running_query_instead_of_starting_another(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    athena = FakeAthena(monkeypatch, outcomes=["RUNNING"], written=[])
    operator = ctas_operator()
    operator.max_polling_attempts = 1
    with pytest.raises(Exception, match="Max tries of poll status exceeded"):
        operator.execute(ctas_context(try_number=2))
    assert len(athena.by_token) == 1


def test_commit_queries_get_fresh_tokens_on_each_try(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.config import load_settings
    from reviewflow.settings import load_aws_settings
    from reviewflow.operators.ingest import AthenaCommitOperator

    athena = FakeAthena(monkeypatch, outcomes=["FAILED", "SUCCEEDED"], written=[])
    operator = AthenaCommitOperator(task_id="ingest", staged={}, aws_conn_id=AWS_CONN_ID)
    aws_settings = load_aws_settings(load_settings())
    with pytest.raises(RuntimeError, match="ended FAILED"):
        operator._run(operator.athena_hook(), ctas_context(try_number=1), "SELECT 1", aws_settings)
    operator._run(operator.athena_hook(), ctas_context(try_number=2), "SELECT 1", aws_settings)
    assert list(athena.state.values()) == ["FAILED", "SUCCEEDED"]
