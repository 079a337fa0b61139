"""reviews_ingest: raw Amazon Customer Reviews → curated Parquet partitioned by product_category.

Daily, or by hand from the trigger form. ``stage_raw`` checks the source and copies it into
the raw zone under the run's key; ``ingest`` classifies every row (accepted, excluded by
category, or rejected with its reason) with DuckDB (``local``: :func:`curate_with_duckdb`), or
counts what three Athena tasks wrote (``aws``: :func:`curate_with_athena`), and fails when too
many rows are rejected; ``quality_gate`` runs the Deequ check suite and
fails the run on any Error-level check (Warning-level ones page and continue);
``publish`` writes the run summary and emits the curated-reviews asset that starts
``reviews_train``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, BaseOperator, Param, chain

from include.config import load_settings
from include.sample_data import sample_uri
from reviewflow.dag_defaults import (
    CACHE_ARGS,
    CACHE_PARAMS,
    CATEGORY_ITEMS,
    CATEGORY_RULE,
    CURATED_REVIEWS,
    DEFAULT_ARGS,
    document_tasks,
    on_call,
)
from reviewflow.operators.ingest import (
    AthenaCommitOperator,
    AthenaCtasOperator,
    CurateReviewsLocalOperator,
    PublishCuratedReviewsOperator,
    RunScopedAthenaOperator,
    StageRawReviewsOperator,
    aws_setting,
)
from reviewflow.operators.quality import DataQualityGateOperator
from reviewflow.settings import AWS_CONN_ID_TEMPLATE

settings = load_settings()
CATEGORIES = "{{ params.categories }}"
INGEST_ARGS = {
    "categories": CATEGORIES,
    "max_rejected_share": "{{ params.max_rejected_share }}",
    "execution_timeout": dt.timedelta(hours=1),
}


def curate_with_duckdb(stage_raw: BaseOperator) -> BaseOperator:
    """local: one task classifies the staged file with DuckDB and commits curated and rejected Parquet."""
    return CurateReviewsLocalOperator(task_id="ingest", staged=stage_raw.output, **INGEST_ARGS)


def curate_with_athena(stage_raw: BaseOperator) -> BaseOperator:
    """aws: Athena reads the staged file as the run's raw table, writes the rejected and the curated rows with
    a CTAS each, and ``ingest`` counts them and points the ``reviews_curated`` view at the snapshot."""
    athena_args = {
        "staged": stage_raw.output,
        "categories": CATEGORIES,
        "aws_conn_id": AWS_CONN_ID_TEMPLATE,
        "output_location": "{{ aws_setting('athena_output_location') }}",
        "workgroup": "{{ aws_setting('athena_workgroup') }}",
        "database": "{{ aws_setting('athena_database') }}",
        "sleep_time": 10,
        "execution_timeout": dt.timedelta(hours=1),
    }
    ingest = AthenaCommitOperator(task_id="ingest", staged=stage_raw.output, **INGEST_ARGS)
    chain(
        stage_raw,
        RunScopedAthenaOperator(task_id="athena_create_raw_table", statement="create_raw_table", **athena_args),
        AthenaCtasOperator(task_id="athena_ctas_rejected", dataset="rejected", **athena_args),
        AthenaCtasOperator(task_id="athena_ctas_curated", dataset="curated", **athena_args),
        ingest,
    )
    return ingest


CURATE = {"local": curate_with_duckdb, "aws": curate_with_athena}

with DAG(
    dag_id="reviews_ingest",
    description="Stage raw reviews, curate them to Parquet by product_category, publish the snapshot",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=True,
    user_defined_macros={"aws_setting": aws_setting},
    tags=["reviewflow", "ingestion"],
    **on_call("reviews_ingest"),
    params={
        "source_uri": Param(
            sample_uri(settings.data_root),
            type="string",
            pattern=r"^\S+\.(tsv|tsv\.gz|parquet)$",
            title="Source file",
            description="TSV, TSV.gz or Parquet in the Amazon Customer Reviews schema: a local path, file:// or s3:// URI "
            "inside the allowed storage roots (REVIEWFLOW_ALLOWED_ROOTS; default the data root and the repository's .data/).",
        ),
        "categories": Param(
            [],
            type=["null", "array"],  # null: the trigger form's empty field; optional, not "required"
            items=CATEGORY_ITEMS,
            title="Product categories",
            description=f"Keep only these product_category values ({CATEGORY_RULE}); empty keeps all.",
        ),
        "max_rejected_share": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            title="Maximum rejected share",
            description="Fail the run when a larger share of rows is malformed.",
        ),
        "min_rows": Param(
            1000,
            type="integer",
            minimum=0,
            title="Minimum rows",
            description="The quality gate's hasSize check: fewer curated rows fail the run.",
        ),
        "quality_engine": Param(
            "auto",
            enum=["auto", "deequ", "spark"],
            title="Quality engine",
            description="deequ: PyDeequ with the Deequ jar (REVIEWFLOW_DEEQU_JAR); spark: the built-in single-pass engine; "
            "auto: deequ when its jar is configured or cached locally, else spark.",
        ),
        **CACHE_PARAMS,
    },
) as dag:
    stage_raw = StageRawReviewsOperator(task_id="stage_raw", source_uri="{{ params.source_uri }}")
    ingest = CURATE[settings.backend](stage_raw)
    quality_gate = DataQualityGateOperator(
        task_id="quality_gate",
        curated_uri=ingest.output["curated_uri"],
        engine="{{ params.quality_engine }}",
        min_rows="{{ params.min_rows }}",
        deequ_jar=settings.deequ_jar,
        **CACHE_ARGS,
        execution_timeout=dt.timedelta(hours=2),
    )
    publish = PublishCuratedReviewsOperator(
        task_id="publish", ingested=ingest.output, staged=stage_raw.output, asset=CURATED_REVIEWS
    )
    chain(stage_raw, ingest, quality_gate, publish)
    document_tasks(dag)
