"""reviews_ingest: raw Amazon Customer Reviews → curated Parquet partitioned by product_category.

Daily, or by hand from the trigger form. ``stage_raw`` checks the source and copies it into
the raw zone under the run's key; ``ingest`` classifies every row (accepted, excluded by
category, or rejected with its reason) with DuckDB (``local``) or Athena CTAS (``aws``)
and fails when too many rows are rejected; ``quality_gate`` runs the Deequ check suite and
fails the run on any Error-level check (Warning-level ones page and continue);
``publish`` writes the run summary and emits the curated-reviews asset that starts
``reviews_train``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param

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
    athena_object,
    athena_sql,
    aws_setting,
)
from reviewflow.operators.quality import DataQualityGateOperator
from reviewflow.settings import AWS_CONN_ID_TEMPLATE

settings = load_settings()
STAGED = "{{ ti.xcom_pull(task_ids='stage_raw') }}"

with DAG(
    dag_id="reviews_ingest",
    description="Stage raw reviews, curate them to Parquet by product_category, publish the snapshot",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=True,
    user_defined_macros={"athena_object": athena_object, "athena_sql": athena_sql, "aws_setting": aws_setting},
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
    ingest_args = {
        "staged": STAGED,
        "categories": "{{ params.categories }}",
        "max_rejected_share": "{{ params.max_rejected_share }}",
        "execution_timeout": dt.timedelta(hours=1),
    }
    if settings.backend == "aws":
        athena_args = {
            "aws_conn_id": AWS_CONN_ID_TEMPLATE,
            "output_location": "{{ aws_setting('athena_output_location') }}",
            "workgroup": "{{ aws_setting('athena_workgroup') }}",
            "database": "{{ aws_setting('athena_database') }}",
            "sleep_time": 10,
            "execution_timeout": dt.timedelta(hours=1),
        }

        def athena_query(statement: str) -> str:
            return f"{{{{ athena_sql('{statement}', run_id, ti.xcom_pull(task_ids='stage_raw'), params.categories) }}}}"

        athena_steps = [
            RunScopedAthenaOperator(task_id="athena_create_raw_table", query=athena_query("create_raw_table"), **athena_args),
            *(
                AthenaCtasOperator(
                    task_id=f"athena_ctas_{dataset}",
                    query=athena_query(f"ctas_{dataset}"),
                    table=f"{{{{ athena_object('{dataset}_table', run_id) }}}}",
                    location=f"{{{{ athena_object('{dataset}_location', run_id) }}}}",
                    **athena_args,
                )
                for dataset in ("rejected", "curated")
            ),
        ]
        ingest = AthenaCommitOperator(task_id="ingest", **ingest_args)
        stage_raw >> athena_steps[0] >> athena_steps[1] >> athena_steps[2] >> ingest
    else:
        ingest = CurateReviewsLocalOperator(task_id="ingest", **ingest_args)
        stage_raw >> ingest
    quality_gate = DataQualityGateOperator(
        task_id="quality_gate",
        curated_uri="{{ ti.xcom_pull(task_ids='ingest')['curated_uri'] }}",
        engine="{{ params.quality_engine }}",
        min_rows="{{ params.min_rows }}",
        deequ_jar=settings.deequ_jar,
        **CACHE_ARGS,
        execution_timeout=dt.timedelta(hours=2),
    )
    publish = PublishCuratedReviewsOperator(
        task_id="publish",
        ingested="{{ ti.xcom_pull(task_ids='ingest') }}",
        staged=STAGED,
        asset=CURATED_REVIEWS,
    )
    ingest >> quality_gate >> publish
    document_tasks(dag)
