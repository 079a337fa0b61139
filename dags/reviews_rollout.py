"""reviews_rollout: serve the approved challenger beside the champion and let a bandit decide between them.

Runs when ``reviews_train`` approves a challenger (the ``reviewflow_approved_model`` asset), or by hand.
``resolve_models`` picks the champion and the challenger (an Approved version only);
``start_experiment`` commits the experiment with each challenger at the minimum weight and
``deploy_challenger`` puts both variants on the endpoint (the local server is started if it is not
running; on aws a new SageMaker endpoint config with both production variants). Locally
``start_replay`` sends the held-out replay reviews as live traffic and posts each answer's reward.
``bandit_rounds`` shifts traffic by Thompson sampling (P(best) per variant, floored) round by round,
waiting deferred between rounds, until the stop rule, the guardrail (a clearly worse challenger is
rolled back at once) or the budget decides. ``conclude`` promotes the winner (registry alias and all
traffic) or keeps the champion, paging on a rollback; ``report`` writes the plots and the summary.
Policy and simulations: docs/bandit.md.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, BaseOperator, Param, chain

from include.config import load_settings
from include.rollout import PolicyParams
from reviewflow.dag_defaults import APPROVED_MODEL, DEFAULT_ARGS, document_tasks, on_call
from reviewflow.operators.endpoint import DeployEndpointOperator
from reviewflow.operators.rollout import (
    BanditRoundsOperator,
    ConcludeRolloutOperator,
    ResolveRolloutOperator,
    RolloutReportOperator,
    StartExperimentOperator,
    StartReplayOperator,
    StopReplayOperator,
)
from reviewflow.settings import AWS_CONN_ID_TEMPLATE as AWS_CONN_ID

settings = load_settings()
POLICY = PolicyParams()


def replayed_traffic(
    resolve_models: BaseOperator, deploy_challenger: BaseOperator, bandit_rounds: BaseOperator
) -> None:
    """local: ``start_replay`` (a setup) sends the held-out replay reviews to the endpoint as live traffic and
    posts each answer's reward while ``bandit_rounds`` runs; ``stop_replay`` (its teardown) ends it."""
    start_replay = StartReplayOperator(
        task_id="start_replay", models=resolve_models.output, rate="{{ params.replay_rate }}",
        concurrency="{{ params.replay_concurrency }}", max_requests="{{ params.replay_requests }}",
        seed="{{ params.seed }}",
    )
    stop_replay = StopReplayOperator(task_id="stop_replay")
    chain(deploy_challenger, start_replay.as_setup(), bandit_rounds, stop_replay.as_teardown(setups=start_replay))


def live_traffic(resolve_models: BaseOperator, deploy_challenger: BaseOperator, bandit_rounds: BaseOperator) -> None:
    """aws: the endpoint's own callers are the traffic; no task sends any."""


TRAFFIC = {"local": replayed_traffic, "aws": live_traffic}


with DAG(
    dag_id="reviews_rollout",
    description="Champion and challenger side by side on one endpoint; Thompson sampling decides",
    schedule=[APPROVED_MODEL],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=True,
    tags=["reviewflow", "rollout"],
    **on_call("reviews_rollout"),
    params={
        "challenger_version": Param(
            None, type=["null", "string"], title="Challenger version",
            description="A registry version to roll out (must be Approved); empty: the triggering approval or the registry's challenger alias.",
        ),
        "round_size": Param(200, type="integer", minimum=10, maximum=100_000, title="Round size",
                            description="New predictions per round."),
        "min_rewarded_per_arm": Param(POLICY.min_rewarded_per_arm, type="integer", minimum=0, title="Minimum rewarded requests per variant",
                                      description="The stop rule waits until every variant has this many rewarded requests."),
        "p_best_threshold": Param(POLICY.p_best_threshold, type="number", exclusiveMinimum=0, maximum=1, title="P(best) to decide"),
        "expected_loss_threshold": Param(POLICY.expected_loss_threshold, type="number", exclusiveMinimum=0, maximum=1,
                                         title="Expected loss to decide"),
        "min_weight": Param(POLICY.min_weight, type="number", minimum=0, maximum=0.5, title="Minimum traffic weight per variant"),
        "guardrail_margin": Param(POLICY.guardrail_margin, type="number", minimum=0, maximum=1, title="Guardrail margin",
                                  description="Roll back when P(challenger rate < champion rate - margin) reaches the guardrail probability."),
        "guardrail_probability": Param(POLICY.guardrail_probability, type="number", exclusiveMinimum=0, maximum=1,
                                       title="Guardrail probability"),
        "budget_requests": Param(5000, type=["null", "integer"], minimum=1, title="Budget: requests",
                                 description="Undecided after this many requests: keep the champion unless a challenger's P(best) reaches the threshold. Empty: no limit."),
        "budget_hours": Param(24, type=["null", "number"], exclusiveMinimum=0, title="Budget: hours"),
        "poll_seconds": Param(2 if settings.backend == "local" else 60, type="number", exclusiveMinimum=0, maximum=3600,
                              title="Seconds between looks at the feedback"),
        "seed": Param(42, type="integer", title="Seed"),
        "replay_rate": Param(100, type="number", minimum=0, title="Replay: requests per second (local)"),
        "replay_concurrency": Param(8, type="integer", minimum=1, maximum=256, title="Replay: concurrent clients (local)"),
        "replay_requests": Param(6000, type="integer", minimum=1, title="Replay: requests to send (local)",
                                 description="More than the request budget, so the last round before it fills "
                                             "instead of waiting for traffic; stop_replay ends the replay early."),
    },
) as dag:
    resolve_models = ResolveRolloutOperator(
        task_id="resolve_models", challenger_version="{{ params.challenger_version }}", aws_conn_id=AWS_CONN_ID
    )
    start_experiment = StartExperimentOperator(
        task_id="start_experiment",
        models=resolve_models.output,
        policy={
            "min_rewarded_per_arm": "{{ params.min_rewarded_per_arm }}",
            "p_best_threshold": "{{ params.p_best_threshold }}",
            "expected_loss_threshold": "{{ params.expected_loss_threshold }}",
            "min_weight": "{{ params.min_weight }}",
            "guardrail_margin": "{{ params.guardrail_margin }}",
            "guardrail_probability": "{{ params.guardrail_probability }}",
            "budget_requests": "{{ params.budget_requests }}",
            "budget_hours": "{{ params.budget_hours }}",
        },
        seed="{{ params.seed }}",
        aws_conn_id=AWS_CONN_ID,
    )
    deploy_challenger = DeployEndpointOperator(
        task_id="deploy_challenger", variants=start_experiment.output["variants"], aws_conn_id=AWS_CONN_ID,
        execution_timeout=dt.timedelta(hours=1),  # a SageMaker endpoint update and its waiter
    )
    bandit_rounds = BanditRoundsOperator(
        task_id="bandit_rounds", round_size="{{ params.round_size }}", poll_seconds="{{ params.poll_seconds }}",
        aws_conn_id=AWS_CONN_ID,
        execution_timeout=dt.timedelta(minutes=30),  # each resume: a round or two (deferred in between)
    )
    conclude = ConcludeRolloutOperator(task_id="conclude", aws_conn_id=AWS_CONN_ID, execution_timeout=dt.timedelta(hours=1))
    report = RolloutReportOperator(task_id="report", aws_conn_id=AWS_CONN_ID)
    chain(resolve_models, start_experiment, deploy_challenger, bandit_rounds, conclude, report)
    TRAFFIC[settings.backend](resolve_models, deploy_challenger, bandit_rounds)
    document_tasks(dag)
