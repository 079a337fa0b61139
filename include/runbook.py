"""The on-call runbook: one entry per DAG and per task, rendered as the UI's ``doc_md`` and as docs/runbook.md.

Every page names its alert title; ``docs/runbook.md`` has one section per title (anchors from
:func:`anchor`), so a page links straight to what to check and how to rerun. Regenerate the file
after editing an entry: ``python -m include.runbook > docs/runbook.md`` (a test compares them).
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass

ALERT_PREFIX = "[reviewflow]"
RERUN_TASK = (
    "Every task is idempotent (outputs keyed by the run, committed atomically): fix the cause, then clear "
    "this task with its downstream tasks in this run only (the page has the command, or Clear on the task's page)."
)
# Said of each cached step (docs/architecture.md#step-caching).
CACHED_STEP = (
    " Locally it reuses a committed output with the same fingerprint (input content, params, code): the log and the "
    "run summary say 'cache: hit' and the run it came from; the param force recomputes."
)


@dataclass(frozen=True)
class Runbook:
    """What on-call needs about one DAG or task."""

    does: str
    inputs: str
    outputs: str
    check: str
    rerun: str = RERUN_TASK


@dataclass(frozen=True)
class DagRunbook(Runbook):
    """A DAG's entry, with how long its runs may take.

    :param deadline: a run still going this long after it was queued pages (a deadline alert).
    :param run_timeout: a run going this long fails (``dagrun_timeout``).
    """

    deadline: dt.timedelta = dt.timedelta(hours=1)
    run_timeout: dt.timedelta = dt.timedelta(hours=6)


def task_failure_title(dag_id: str, task_id: str) -> str:
    """The title of the page for a failed try of ``task_id``."""
    return f"{ALERT_PREFIX} {dag_id}.{task_id} failed"


def run_failure_title(dag_id: str) -> str:
    """The title of the page for a failed run of ``dag_id``."""
    return f"{ALERT_PREFIX} {dag_id} run failed"


def deadline_title(dag_id: str) -> str:
    """The title of the page for a run of ``dag_id`` still going past its deadline."""
    return f"{ALERT_PREFIX} {dag_id} run past its deadline"


QUALITY_WARNINGS_TITLE = f"{ALERT_PREFIX} data quality warnings"
ROLLBACK_TITLE = f"{ALERT_PREFIX} rollout rolled back"


def anchor(dag_id: str, part: str) -> str:
    """The HTML anchor of a runbook section: ``reviews_ingest-stage_raw``, ``reviews_ingest-deadline``."""
    return f"{dag_id}-{part}".replace(".", "-")


QUALITY_WARNINGS_ANCHOR = "data-quality-warnings"
ROLLBACK_ANCHOR = "rollout-rolled-back"
SRM_TITLE = f"{ALERT_PREFIX} rollout round N: traffic does not follow the weights"
SRM_ANCHOR = "rollout-traffic-does-not-follow-the-weights"

DAGS: dict[str, DagRunbook] = {
    "reviews_ingest": DagRunbook(
        does="Stages a raw reviews file, classifies every row (accepted, excluded by category, rejected with its "
        "reason) into curated Parquet partitioned by product_category, runs the Deequ quality gate and publishes the "
        "snapshot (the reviewflow_curated_reviews asset starts reviews_train).",
        inputs="The trigger form's source_uri (TSV, TSV.gz or Parquet; local or s3://), categories, max_rejected_share, "
        "min_rows, quality_engine.",
        outputs="{data root}/raw/reviews/run={run}/, curated/reviews/snapshot={run}/, rejected/reviews/snapshot={run}/, "
        "reports/{run}/ (summary.json, quality report), curated/reviews/_latest.json.",
        check="The failed task's page (its runbook section below). A run that only stalls: the deadline section.",
        rerun="Clear the failed task with downstream in that run; or trigger a new run (a new snapshot, nothing shared).",
        # Locally ≈ 1 min for 20k rows; on aws a few Athena queries and a Processing job.
        deadline=dt.timedelta(hours=1),
        run_timeout=dt.timedelta(hours=4),
    ),
    "reviews_train": DagRunbook(
        does="Builds features from a curated snapshot, fine-tunes the sentiment model, evaluates it against the "
        "champion on the same test split, registers it as PendingManualApproval and approves or rejects it "
        "(automatic gate, optionally a human); an approved challenger starts reviews_rollout.",
        inputs="A curated snapshot (the asset event, the form's curated_uri or the newest published one) and the "
        "training params of the trigger form.",
        outputs="{data root}/features/{run}/, models/{run}/ (model, metrics.json, evaluation.json, plots), a registry "
        "version with its lineage, reports/{run}/summary.json.",
        check="The failed task's page. A rejected model (approval_gate, human_approval) is a verdict, not a fault.",
        rerun="Clear the failed task with downstream in that run; registering the same run again returns the same version.",
        # Features and fine-tuning take minutes to hours (train's execution_timeout is 6 h); a manual approval may
        # wait approval_timeout hours (default 24), so the deadline pages a pending approval and the timeout allows it.
        deadline=dt.timedelta(hours=8),
        run_timeout=dt.timedelta(hours=48),
    ),
    "reviews_rollout": DagRunbook(
        does="Serves the approved challenger beside the champion on one endpoint, shifts traffic by Thompson sampling "
        "round by round until the stop rule, the guardrail or the budget decides, then promotes the winner or keeps "
        "the champion. Policy: docs/bandit.md.",
        inputs="An Approved challenger (the asset event, the form's challenger_version or the challenger alias), the "
        "champion, the endpoint's feedback (served predictions and rewards); the policy params of the trigger form.",
        outputs="{data root}/rollout/{run}/ (the rollout record: every round), the endpoint's variants and weights, the "
        "registry's champion alias and rollout outcomes, reports/{run}/rollout/ plots and the summary.",
        check="The failed task's page. A rollback is the guardrail doing its job, not a fault.",
        rerun="Clear the failed task with downstream in that run: rounds are committed before their weights are pushed, "
        "so a retry resumes from the last committed round and counts no feedback twice.",
        # The budget (budget_hours, default 24) ends an undecided experiment.
        deadline=dt.timedelta(hours=30),
        run_timeout=dt.timedelta(hours=72),
    ),
}

_INGEST = "reviews_ingest"
_TRAIN = "reviews_train"
_ROLLOUT = "reviews_rollout"
_ATHENA_CHECK = (
    "The Athena query id in the log: its state-change reason in the Athena console (permissions on the S3 prefixes, "
    "the Glue database reviewflow_athena_database, workgroup limits); throttling is retried with backoff."
)

TASKS: dict[tuple[str, str], Runbook] = {
    (_INGEST, "stage_raw"): Runbook(
        does="Checks the source file (exists, not empty, a TSV header in the Amazon schema) and copies it into the raw "
        "zone under the run's key.",
        inputs="params.source_uri.",
        outputs="raw/reviews/run={run}/{file}; XCom {source_uri, raw_uri, raw_dir, format, bytes}.",
        check="The error names the file: not found, empty, a bad header or a local path on the aws backend (upload it "
        "to S3). Bad input fails at once, without retries.",
    ),
    (_INGEST, "athena_create_raw_table"): Runbook(
        does="aws: creates the run's external raw table over the staged file (Athena DDL, a request token per run).",
        inputs="stage_raw's XCom; the reviewflow_athena_* Variables and the reviewflow_aws_conn_id connection.",
        outputs="A Glue table named after the run.",
        check=_ATHENA_CHECK,
    ),
    (_INGEST, "athena_ctas_rejected"): Runbook(
        does="aws: CTAS of the run's malformed rows, with their reason, to Parquet.",
        inputs="The run's raw table.",
        outputs="rejected/reviews/snapshot={run}/ and its table.",
        check=_ATHENA_CHECK + " A failed CTAS's partial output is removed before the retry.",
    ),
    (_INGEST, "athena_ctas_curated"): Runbook(
        does="aws: CTAS of the run's accepted rows to Parquet partitioned by product_category.",
        inputs="The run's raw table; params.categories.",
        outputs="curated/reviews/snapshot={run}/ and its table.",
        check=_ATHENA_CHECK + " A failed CTAS's partial output is removed before the retry.",
    ),
    (_INGEST, "ingest"): Runbook(
        does="Classifies every row (DuckDB locally; Athena counts on aws), checks the rejected share and commits the "
        "curated and rejected datasets (aws: points reviews_curated at the snapshot).",
        inputs="stage_raw's XCom; params.categories, params.max_rejected_share.",
        outputs="XCom {snapshot, curated_uri, rejected_uri, format, counts}; metrics reviewflow.ingest.rows_*.",
        check="The run summary's ingest.counts.rejected_by_reason names what is wrong with the rows; no rows in the "
        "requested categories names the categories present. Both are verdicts: fix the file or the param.",
    ),
    (_INGEST, "quality_gate"): Runbook(
        does="Runs the Deequ check suite on the curated snapshot (the Deequ jar or the built-in Spark engine); "
        "Warning-level failures page and continue, Error-level ones fail the run." + CACHED_STEP,
        inputs="ingest's curated_uri; params.min_rows, params.quality_engine.",
        outputs="reports/{run}/quality/report.{json,html} (the Quality report button); metric "
        "reviewflow.quality.checks_failed.",
        check="The Quality report button on this task: the failed checks with their values. An Error-level failure is "
        "a verdict about the data, not retried; a crash of Spark or the Processing job is retried.",
        rerun="For a verdict, fix the data (or the param a threshold names) and run reviews_ingest again; clearing "
        "this task on the same snapshot gives the same verdict.",
    ),
    (_INGEST, "publish"): Runbook(
        does="Writes the run summary's ingest section, points curated/reviews/_latest.json at the snapshot and emits "
        "the reviewflow_curated_reviews asset.",
        inputs="ingest's and stage_raw's XComs.",
        outputs="reports/{run}/summary.json, curated/reviews/_latest.json, an asset event.",
        check="Write access to the data root (local folder or S3 through reviewflow_aws_conn_id).",
    ),
    (_TRAIN, "resolve_snapshot"): Runbook(
        does="Picks the curated snapshot: the form's curated_uri, else the triggering asset event, else the newest "
        "published one.",
        inputs="params.curated_uri, the asset events, curated/reviews/_latest.json.",
        outputs="XCom {curated_uri, snapshot}.",
        check="'no curated snapshot yet': run reviews_ingest first; a curated_uri that does not exist.",
    ),
    (_TRAIN, "build_features"): Runbook(
        does="The Spark feature job: sentiment labels, class balance, hash splits, tokens and scaled features." + CACHED_STEP,
        inputs="The curated snapshot; params categories, balance, max_seq_length, truncation, eval_floor, seed.",
        outputs="features/{run}/{train,validation,test}/ and manifest.json.",
        check="The Spark driver log (EMR Serverless or Processing job id on aws); a class with too few rows for "
        "eval_floor is a verdict naming the param.",
    ),
    (_TRAIN, "train"): Runbook(
        does="Fine-tunes all-MiniLM-L6-v2 with include/training/sourcedir/train.py: a subprocess locally, a SageMaker "
        "training job on aws. Checkpoints let a retry resume." + CACHED_STEP,
        inputs="features/{run}/; params epochs, learning_rate, max_train_samples, max_seq_length, seed, "
        "model_name_or_path.",
        outputs="models/{run}/ (model.safetensors, metrics.json, plots).",
        check="'train.py exited with code …' or 'killed by signal SIGKILL': memory (lower max_seq_length or the batch) "
        "or an operator kill; the last lines of train.py are in the page. 'train.py cannot use its input: …' (not "
        "retried): the features do not fit the params, e.g. model_name_or_path with another vocabulary than the "
        "features were tokenized with. On aws the SageMaker job's FailureReason.",
        rerun="Clear it: the retry resumes from the last checkpoint; a SageMaker job of the same run is re-attached.",
    ),
    (_TRAIN, "evaluate"): Runbook(
        does="Scores the new model and the champion on this run's test split, with a paired bootstrap interval of "
        "the macro-F1 change." + CACHED_STEP,
        inputs="models/{run}/, the registry's champion, features/{run}/test.",
        outputs="models/{run}/evaluation.json, evaluation/confusion_matrix.png; metric "
        "reviewflow.model.test_macro_f1.",
        check="That the champion's model folder is still readable (registry artefacts).",
    ),
    (_TRAIN, "register"): Runbook(
        does="Registers the model as PendingManualApproval with its metrics and lineage (MLflow locally, SageMaker "
        "Model Registry on aws).",
        inputs="models/{run}/, the run summary.",
        outputs="A registry version (the same on a rerun of the run).",
        check="The registry: MLflow's database or tracking server; on aws the model package group and IAM.",
    ),
    (_TRAIN, "approval_gate"): Runbook(
        does="Weighs the evidence: rejects below min_macro_f1, with too few test rows, or when the interval admits a "
        "drop larger than max_f1_drop; else branches on approval_mode.",
        inputs="evaluate's results; params min_macro_f1, max_f1_drop, min_test_rows, approval_mode.",
        outputs="The version marked Rejected with the reason, or the branch to human_approval / record_approval.",
        check="A rejection is a verdict, not retried: the reason is in the page; compare evaluation.json with the "
        "champion's.",
        rerun="Train a better model (a new run); clearing the gate on the same model gives the same verdict.",
    ),
    (_TRAIN, "human_approval"): Runbook(
        does="Asks a person under Required Actions; no answer within approval_timeout hours rejects.",
        inputs="The comparison, the gate's verdict and the report links.",
        outputs="The answer (status, approver, comment) on the registry version.",
        check="Whether anyone was asked: the run's Required Actions; a Reject is a verdict.",
    ),
    (_TRAIN, "record_approval"): Runbook(
        does="Approves the version; the first model becomes champion, a later one challenger and emits the "
        "approved-model asset that starts reviews_rollout.",
        inputs="The registry version of the run.",
        outputs="Approval tags and the champion/challenger alias; an asset event for a challenger.",
        check="The registry (as for register).",
    ),
    (_ROLLOUT, "resolve_models"): Runbook(
        does="Picks the champion and the challenger to roll out (an Approved version only).",
        inputs="params.challenger_version, the approved-model asset event, the registry's aliases.",
        outputs="XCom {champion, challengers} with versions and model URIs.",
        check="The error names the version and why it cannot be rolled out (not Approved, already champion, no "
        "champion); a verdict, not retried.",
    ),
    (_ROLLOUT, "start_experiment"): Runbook(
        does="Commits the experiment (policy, arms, each challenger at the minimum weight) to the rollout record.",
        inputs="resolve_models' XCom; the policy params.",
        outputs="rollout/{run}/record.json; XCom {variants}.",
        check="Write access to the data root; a policy param the policy refuses is named in the error.",
    ),
    (_ROLLOUT, "deploy_challenger"): Runbook(
        does="Puts champion and challenger on the endpoint as variants (local: starts the server if needed; aws: an "
        "endpoint config with both production variants).",
        inputs="start_experiment's variants.",
        outputs="The endpoint serving both variants at the experiment's weights.",
        check="local: {data root}/endpoint/reviewflow/server.log (port, model folders); aws: the endpoint's "
        "FailureReason and the variants' CloudWatch logs.",
    ),
    (_ROLLOUT, "start_replay"): Runbook(
        does="local: starts the replay traffic generator (held-out reviews as live traffic, a reward per answer), "
        "detached; a retry finds it running.",
        inputs="The challenger's features run (replay split), the endpoint.",
        outputs="A running generator; its progress file and log under rollout/{run}/.",
        check="The generator's log under rollout/{run}/; that the endpoint answers /ping.",
    ),
    (_ROLLOUT, "bandit_rounds"): Runbook(
        does="Plays rounds: reads new feedback, updates the posteriors, pushes the weights; defers between rounds "
        "until the stop rule, the guardrail or the budget decides. Pages on a sample-ratio mismatch and on each "
        "challenger the guardrail rolls back.",
        inputs="The rollout record, the endpoint's feedback; params round_size, poll_seconds.",
        outputs="A committed round in the record per round; the endpoint's weights; XCom of the decision.",
        check="The round lines in the log (weights, P(best), sample-ratio note); a stalled experiment is usually no "
        "traffic (local: the replay generator) or no rewards coming back.",
        rerun="Clear it: it resumes from the last committed round and reads feedback from the committed cursor.",
    ),
    (_ROLLOUT, "stop_replay"): Runbook(
        does="local: stops the replay generator of this run (teardown; runs even when bandit_rounds failed).",
        inputs="The generator's pid file under rollout/{run}/.",
        outputs="The client's own tally (requests sent and answered).",
        check="A generator still running: its pid in the log; stopping it by hand is safe.",
    ),
    (_ROLLOUT, "conclude"): Runbook(
        does="Acts on the decision: promotes the winner (champion alias, all traffic) or keeps the champion, removes "
        "the other variants; pages on a rollback. Metric reviewflow.rollout.decision.{action}.",
        inputs="The decided rollout record.",
        outputs="The registry's aliases and rollout outcomes, the endpoint serving the winner alone.",
        check="'has not decided yet': bandit_rounds of this run did not finish. Otherwise the registry or the endpoint "
        "(as for deploy_challenger).",
    ),
    (_ROLLOUT, "report"): Runbook(
        does="Writes the plots (weights, reward, regret) and the run summary's rollout section. Metric "
        "reviewflow.rollout.regret.",
        inputs="The rollout record.",
        outputs="reports/{run}/rollout/*.png and the summary's rollout section.",
        check="Write access to the data root.",
    ),
}


def dag_runbook(dag_id: str) -> DagRunbook:
    """The runbook entry of ``dag_id``; a KeyError names a DAG without one."""
    return DAGS[dag_id]


def task_runbook(dag_id: str, task_id: str) -> Runbook:
    """The runbook entry of ``task_id`` in ``dag_id``; a KeyError names a task without one."""
    return TASKS[(dag_id, task_id)]


def entry_markdown(entry: Runbook) -> str:
    """An entry as Markdown: what it does, inputs, outputs, what to check, how to rerun."""
    return "\n\n".join(
        [
            entry.does,
            f"**Inputs.** {entry.inputs}",
            f"**Outputs.** {entry.outputs}",
            f"**When it fails, check.** {entry.check}",
            f"**Rerun safely.** {entry.rerun}",
        ]
    )


def section_url(base_url: str, section_anchor: str) -> str:
    """The link to one runbook section under ``base_url`` (docs/runbook.md as published)."""
    return f"{base_url}#{section_anchor}"


def _hours(interval: dt.timedelta) -> str:
    hours = interval.total_seconds() / 3600
    return f"{hours:g} hour" + ("" if hours == 1 else "s")


def _deadline_section(dag_id: str, entry: DagRunbook) -> str:
    return (
        f"A run of {dag_id} is still going {_hours(entry.deadline)} after it was queued (it fails at "
        f"{_hours(entry.run_timeout)}, its dagrun_timeout). It pages once per run, while the run "
        "goes on. Check the run's grid: a task queued but not running (no free worker slot, executor down), a task "
        "waiting for input (human_approval: answer it under Required Actions), or a task still running (its log: is "
        "it progressing?). Nothing is stopped by this page; every task's execution_timeout bounds its try."
    )


def _run_failure_section(dag_id: str) -> str:
    return (
        f"A run of {dag_id} ended failed (a task failed for good, or the run hit its dagrun_timeout). The failed "
        "task paged on its own with its error; this page names the reason of the run. A try whose process was "
        "killed (kill -9, out of memory) cannot page itself: the next try pages for it as it starts, and this page "
        "lists such tries under 'Ended without reporting'; check the host's memory (dmesg) and the try's last log lines."
    )


def render() -> str:
    """docs/runbook.md: every page's section, by alert title."""
    lines = [
        "# Runbook",
        "",
        "<!-- Generated by `python -m include.runbook > docs/runbook.md` from include/runbook.py; edit that. -->",
        "",
        "Every page reviewflow sends has a title listed here and a link to its section. A task failure page names the "
        "DAG, task, run, try, the error's first line, the task's log and the command that clears this run's task "
        "with its downstream tasks. Pages go to the alert log (`REVIEWFLOW_ALERT_LOG`) always, to SNS "
        "(`REVIEWFLOW_SNS_TOPIC_ARN`, through the `reviewflow_aws_conn_id` connection) and to a Slack-compatible "
        "webhook (`REVIEWFLOW_ALERT_WEBHOOK_URL`) when set; a task pages once per failed try. The same text is on "
        "each DAG's and task's Docs in the Airflow UI.",
        "",
        "Metrics (StatsD, through Airflow's metrics backend: `[metrics] statsd_on`, `statsd_host`, `statsd_port`, "
        "prefix `statsd_prefix`): `reviewflow.ingest.rows_in`, `.rows_accepted`, `.rows_rejected` (counters), "
        "`reviewflow.quality.checks_failed` (counter), `reviewflow.model.test_macro_f1` (gauge, the new model's, "
        "from `evaluate`), `reviewflow.rollout.decision.<action>` (counter: the concluded rollout's action) and "
        "`reviewflow.rollout.regret` (gauge: cumulative pseudo-regret, from the rollout's `report`).",
        "",
    ]
    for dag_id, entry in DAGS.items():
        lines += [f"## {dag_id}", "", entry_markdown(entry), ""]
        sections = [
            (anchor(dag_id, "run-failed"), run_failure_title(dag_id), _run_failure_section(dag_id)),
            (anchor(dag_id, "deadline"), deadline_title(dag_id), _deadline_section(dag_id, entry)),
        ]
        sections += [
            (anchor(dag_id, task_id), task_failure_title(dag_id, task_id), entry_markdown(task))
            for (owner, task_id), task in TASKS.items()
            if owner == dag_id
        ]
        for section_anchor, title, text in sections:
            lines += [f'### <a id="{section_anchor}"></a>`{title}`', "", text, ""]
    lines += [
        f'## <a id="{QUALITY_WARNINGS_ANCHOR}"></a>`{QUALITY_WARNINGS_TITLE}: …`',
        "",
        "Warning-level checks of the quality gate failed; the run went on. The page lists the checks and links the "
        "report. Decide whether the data drifted (bias section of the report: label and category shares) or the "
        "threshold is too tight; nothing needs a rerun.",
        "",
        f'## <a id="{ROLLBACK_ANCHOR}"></a>`{ROLLBACK_TITLE}: …` (and `[reviewflow] rollout: … v… rolled back`)',
        "",
        "The guardrail found a challenger clearly worse than the champion: it got no more traffic, is Rejected in the "
        "registry with the reason, and the champion serves in its place. Nothing is broken; look at the challenger's "
        "evaluation (reviews_train's evaluation.json) against its live reward rate in the rollout report before "
        "training another.",
        "",
        f'## <a id="{SRM_ANCHOR}"></a>`{SRM_TITLE}`',
        "",
        "The requests each variant served do not match the weights of the round (chi-square sample-ratio check). "
        "Routing is broken or a variant fails: check the endpoint (local: server.log and GET /admin/endpoint; aws: "
        "the endpoint config in service and the variants' errors) before trusting the experiment; clear bandit_rounds "
        "once it is fixed.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
