"""Operators of ``reviews_rollout``: the approved challenger beside the champion, a bandit deciding between them.

Wiring (``dags/reviews_rollout.py``)::

    resolve_models >> start_experiment >> deploy_challenger >> [start_replay (local)] >> bandit_rounds >> conclude >> report
                                                                                         stop_replay (teardown)

* ``resolve_models`` (:class:`ResolveRolloutOperator`): the champion and the challenger(s) to roll out,
  from the trigger form, the approved-model asset events, or the registry's ``challenger`` alias; a
  version that is not ``Approved`` never gets further, one whose rollout already ended is skipped.
* ``start_experiment`` (:class:`StartExperimentOperator`): the experiment (every challenger at the
  minimum weight, :func:`include.rollout.create_experiment`) committed to the run's rollout record;
  ``deploy_challenger`` (``reviewflow.operators.endpoint.DeployEndpointOperator``) then makes the
  endpoint serve exactly its arms with those weights (starting the local endpoint if it is not running).
* ``start_replay``/``stop_replay`` (``local``): :class:`StartReplayOperator` starts the traffic
  generator of :mod:`include.rollout.replay` detached; :class:`StopReplayOperator` stops it and
  returns the client's tally.
* ``bandit_rounds`` (:class:`BanditRoundsOperator`): each round reads the feedback that arrived,
  advances the experiment (:func:`include.rollout.step`), commits it, pushes the new weights, and
  waits for the next round deferred (no worker slot held).
* ``conclude`` (:class:`ConcludeRolloutOperator`): promote (registry ``champion`` alias, all traffic to
  the winner, the other variants removed) or keep the champion; pages on a rollback.
* ``report`` (:class:`RolloutReportOperator`): the PNG plots and the run summary's ``rollout`` section.

Every task reads and writes the run's :class:`include.rollout.record.RolloutRecord`, so any of them can
be retried: a round resumes from the last committed one without counting feedback twice.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from contextlib import closing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from include.config import load_settings
from include.errors import BadInputError
from include.lineage_datasets import REGISTRY_NAMESPACES, endpoint_variant_dataset, model_version_dataset, storage_dataset
from include.registry.base import (
    APPROVED,
    CHALLENGER,
    CHAMPION,
    DEFAULT_MODEL_NAME,
    NOT_PROMOTED,
    PROMOTED,
    REJECTED,
    ROLLED_BACK,
)
from include.rollout.record import RECORD_FILE, ArmModel, RolloutRecord
from include.runbook import ROLLBACK_ANCHOR, ROLLBACK_TITLE, SRM_ANCHOR
from include.serving.state import DEFAULT_ENDPOINT_NAME
from include.serving.variants import variant_name
from include.uris import join_uri, local_path
from reviewflow.backends import endpoint_hook_for, registry_for
from reviewflow.hooks.storage import LocalStorage
from reviewflow.lineage import ReportsLineage
from reviewflow.metrics import emit_rollout_decision, emit_rollout_regret
from reviewflow.notifiers import runbook_line, send_alert
from reviewflow.operators.base import AWS_TEMPLATE_FIELDS, AwsConnectedOperator
from reviewflow.run_summary import update_run_summary
from reviewflow.runs import run_key

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.config import Settings
    from include.registry.base import ModelRegistry, ModelVersion
    from include.rollout import ExperimentState, RoundRecord
    from reviewflow.hooks.endpoint import EndpointHook

ROLLOUT_APPROVER = "reviewflow-rollout"


class RolloutInputError(BadInputError):
    """The models asked for cannot be rolled out (no champion, a version that is not approved)."""


def rollout_uri(settings: Settings, key: str) -> str:
    """``<data_root>/rollouts/<run key>``: the experiment record and the replay's files."""
    return join_uri(settings.data_root, "rollouts", key)


class _RolloutTask(AwsConnectedOperator):
    """Reading and committing the run's rollout record, for every task after ``resolve_models``; lineage names."""

    endpoint_name: str
    model_name: str

    def model_datasets(self, versions: Iterable[str]) -> list[tuple[str, str]]:
        namespace = REGISTRY_NAMESPACES[load_settings().backend]
        return [model_version_dataset(namespace, self.model_name, version) for version in versions]

    def variant_datasets(self, variants: Iterable[str]) -> list[tuple[str, str]]:
        return [endpoint_variant_dataset(self.endpoint_name, variant) for variant in variants]

    def record_uri(self, context: Context) -> str:
        return join_uri(rollout_uri(load_settings(), run_key(context)), RECORD_FILE)

    def load_record(self, context: Context) -> RolloutRecord | None:
        uri = self.record_uri(context)
        storage = self.storage(uri)
        return RolloutRecord.from_json(storage.read_bytes(uri)) if storage.exists(uri) else None

    def require_record(self, context: Context) -> RolloutRecord:
        record = self.load_record(context)
        if record is None:
            raise AirflowException(f"{self.record_uri(context)} does not exist: run deploy_challenger of this run first")
        return record

    def commit(self, context: Context, record: RolloutRecord) -> None:
        """Replace the record whole (local: temp name + rename; S3: one PUT)."""
        uri = self.record_uri(context)
        self.storage(uri).write_bytes(uri, record.to_json())

    def endpoint(self) -> EndpointHook:
        return endpoint_hook_for(load_settings(), self.endpoint_name, self.model_name, **self.aws_connection)

    def registry(self) -> ModelRegistry:
        return registry_for(load_settings(), self.model_name, **self.aws_connection)

    def page(self, context: Context, title: str, message: str) -> None:
        """Page on-call (SNS through this task's connection)."""
        send_alert(load_settings(), title, message, context, **self.aws_connection)

    def push_weights(self, context: Context, record: RolloutRecord, hook: EndpointHook) -> RolloutRecord:
        """Make the endpoint's weights the experiment's (a no-op when they already are) and commit the generation."""
        if record.weights_generation:
            return record
        described = hook.set_weights(dict(record.experiment.weights))
        record = record.with_experiment(record.experiment, described.weights_generation)
        self.commit(context, record)
        return record


class ResolveRolloutOperator(_RolloutTask):
    """Decide which champion and challenger(s) this run rolls out; returns their versions and model URIs.

    Challengers, in order: ``challenger_version`` (the trigger form), the versions of the approved-model
    asset events that triggered the run, the registry's ``challenger`` alias.  A challenger must be
    ``Approved`` (the form's choice fails otherwise; an event's is left out) and not already rolled
    out (left out, logged).  With nothing left to roll out the run's remaining tasks are skipped.  A rerun
    of a run that already committed its rollout record returns that record's models.

    :param challenger_version: a registry version to roll out; empty to choose automatically (templated).
    :param model_name: registered model / model package group (templated).
    :param aws_conn_id: connection of the registry and the rollout record on ``aws`` (templated).
    :param region_name: their region; ``None``: the connection's (templated).
    """

    template_fields = (*AWS_TEMPLATE_FIELDS, "challenger_version", "model_name")
    ui_color = "#e0d4f0"

    def __init__(
        self, *, challenger_version: str | None = None, model_name: str = DEFAULT_MODEL_NAME, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.challenger_version = challenger_version
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        registry = self.registry()
        record = self.load_record(context)
        if record is not None:
            # A rerun of a run whose experiment started: the same models, whatever the registry says now
            # (the challenger may be champion or Rejected by this very run).
            self.log.info("run %s already rolls out %s: keeping its models", run_key(context), ", ".join(record.models))
            models = self.models_of(record, registry)
            self.report_lineage(self.model_datasets(m["version"] for m in [models["champion"], *models["challengers"]]), [])
            return models
        champion = registry.champion()
        if champion is None:
            raise RolloutInputError(f"{self.model_name} has no champion: train and approve a first model with reviews_train")
        # str(): native rendering reads a version typed on the form ("3") as the literal it looks like (3).
        given = str(self.challenger_version or "").strip()
        if given:
            candidates, source = [given], "trigger form"
        else:
            events = [e for events in (context.get("triggering_asset_events") or {}).values() for e in events]
            candidates = [str(e.extra["version"]) for e in sorted(events, key=lambda e: e.timestamp) if e.extra.get("version")]
            source = f"{len(events)} approved-model event(s)"
            if not candidates:
                holder = registry.version_for_alias(CHALLENGER)
                candidates, source = ([holder.version] if holder else []), "registry alias challenger"
        challengers = []
        for version in dict.fromkeys(candidates):
            found = registry.get_version(version)
            problem = _not_rollable(found, champion)
            if problem and given:
                raise RolloutInputError(f"{self.model_name} version {version} cannot be rolled out: {problem}")
            if problem:
                self.log.info("leaving out %s version %s: %s", self.model_name, version, problem)
                continue
            challengers.append(found)
        if not challengers:
            raise AirflowSkipException(f"nothing to roll out against champion v{champion.version} (from the {source})")
        self.log.info(
            "rolling out %s against champion v%s (from the %s)",
            ", ".join(f"v{c.version}" for c in challengers), champion.version, source,
        )
        self.report_lineage(self.model_datasets(v.version for v in [champion, *challengers]), [])
        return {
            "model_name": self.model_name,
            "champion": _model_ref(champion),
            "challengers": [_model_ref(challenger) for challenger in challengers],
        }

    def models_of(self, record: RolloutRecord, registry: ModelRegistry) -> dict[str, Any]:
        """The result of the run that committed ``record``: its champion and challengers, in the record's order."""
        champion = record.experiment.champion
        refs = {arm: _model_ref(registry.get_version(model.version)) for arm, model in record.models.items()}
        return {
            "model_name": self.model_name,
            "champion": refs[champion],
            "challengers": [ref for arm, ref in refs.items() if arm != champion],
        }


def _not_rollable(version: ModelVersion, champion: ModelVersion) -> str:
    """Why ``version`` cannot be a challenger now ('' if it can)."""
    if version.version == champion.version:
        return "it is the champion"
    if version.status != APPROVED:
        return f"it is {version.status} ({version.approved_by or 'nobody'}: {version.approval_comment or 'no comment'}); only Approved models are rolled out"
    if version.rollout_outcome:
        return f"its rollout already ended: {version.rollout_outcome} ({version.rollout_reason})"
    return ""


def _model_ref(version: ModelVersion) -> dict[str, str]:
    return {"version": version.version, "model_uri": version.model_uri, "run_key": version.run_key,
            "variant": variant_name(version.version)}


class StartExperimentOperator(_RolloutTask):
    """Start the experiment: the champion and each challenger as arms, each challenger at the minimum weight.

    Commits the run's rollout record (:func:`include.rollout.create_experiment`, counting only feedback
    recorded from now on) and returns the variants to deploy, ``{"variants": [{"model_version",
    "weight"}, ...]}``, for ``deploy_challenger`` (``reviewflow.operators.endpoint.DeployEndpointOperator``).
    A retry finds the committed experiment and returns its current weights; once it decided, the winner alone
    at weight 1, as ``conclude`` leaves the endpoint (a rerun brings no variant back).

    :param models: the XCom of ``resolve_models`` (templated).
    :param policy: :class:`include.rollout.PolicyParams` fields (templated).
    :param seed: seeds every round's Monte Carlo draws (templated).
    :param endpoint_name: the endpoint the experiment runs on (templated).
    :param model_name: registered model whose versions the variants serve (templated).
    :param aws_conn_id: connection of the endpoint's feedback and the storage on ``aws`` (templated).
    :param region_name: their region; ``None``: the connection's (templated).
    """

    template_fields = (*AWS_TEMPLATE_FIELDS, "models", "policy", "seed", "endpoint_name", "model_name")
    template_fields_renderers = {"policy": "json", "models": "json"}
    ui_color = "#d4e8f0"

    def __init__(
        self, *, models: Mapping[str, Any], policy: Mapping[str, Any], seed: int = 42,
        endpoint_name: str = DEFAULT_ENDPOINT_NAME, model_name: str = DEFAULT_MODEL_NAME, **kwargs: Any,
    ) -> None:
        super().__init__(multiple_outputs=True, **kwargs)  # deploy_challenger takes output["variants"]
        self.models = models
        self.policy = policy
        self.seed = seed
        self.endpoint_name = endpoint_name
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        from include.rollout import PolicyParams, create_experiment
        from include.rollout.feedback import log_position

        record = self.load_record(context)
        if record is None:
            try:
                params = PolicyParams.from_dict(dict(self.policy))
            except ValueError as error:
                raise RolloutInputError(f"rollout parameters: {error}") from error
            champion, challengers = self.models["champion"], list(self.models["challengers"])
            with closing(self.endpoint().feedback_reader()) as reader:
                start = log_position(reader)
            experiment = create_experiment(
                champion["variant"], [c["variant"] for c in challengers], params, seed=self.seed,
                now=dt.datetime.now(dt.UTC), cursor=start,
            )
            models = {m["variant"]: ArmModel(m["version"], m["model_uri"]) for m in [champion, *challengers]}
            record = RolloutRecord(self.endpoint_name, experiment, models)
            self.commit(context, record)
        weights = dict(record.experiment.weights)
        if record.experiment.decision is not None:  # a rerun after the decision: no variant comes back
            weights = {winner_of(record.experiment): 1.0}
        self.log.info("experiment on endpoint %s at %s", record.endpoint,
                      ", ".join(f"{arm} {weight:.3f}" for arm, weight in weights.items()))
        self.report_lineage(
            self.model_datasets(model.version for model in record.models.values()), [storage_dataset(self.record_uri(context))]
        )
        return {
            "variants": [{"model_version": record.version_of(arm), "weight": weight} for arm, weight in weights.items()],
            "record_uri": self.record_uri(context),
        }


class BanditRoundsOperator(_RolloutTask):
    """Run the experiment's rounds until it decides: read feedback, update the posteriors, push the weights.

    A round starts once ``round_size`` new predictions were served (or ``max_round_seconds`` passed,
    so a time budget ends even without traffic).  Each round is committed to the rollout record before
    its weights are pushed, so a retry or a restart resumes from the last committed round and reads the
    feedback from the committed cursor: nothing is counted twice.  Between rounds the task defers
    (``poll_seconds``), holding no worker slot.  A challenger the registry approves meanwhile (the
    ``challenger`` alias moves to a version not in the experiment) joins at the minimum weight.  A
    sample-ratio mismatch pages; a challenger the guardrail drops is ``Rejected`` in the registry and pages.

    :param round_size: new predictions per round (templated).
    :param poll_seconds: how long to wait between looks at the feedback (templated).
    :param max_round_seconds: a round starts after this long even with fewer predictions (templated).
    :param endpoint_name: the endpoint the experiment runs on (templated).
    :param model_name: registered model / model package group (templated).
    :param aws_conn_id: connection of the registry, endpoint, storage and pages on ``aws`` (templated).
    :param region_name: their region; ``None``: the connection's (templated).
    """

    template_fields = (*AWS_TEMPLATE_FIELDS, "round_size", "poll_seconds", "max_round_seconds", "endpoint_name", "model_name")
    ui_color = "#f0e4c8"

    def __init__(
        self, *, round_size: int = 200, poll_seconds: float = 5, max_round_seconds: float = 600,
        endpoint_name: str = DEFAULT_ENDPOINT_NAME, model_name: str = DEFAULT_MODEL_NAME, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.round_size = round_size
        self.poll_seconds = poll_seconds
        self.max_round_seconds = max_round_seconds
        self.endpoint_name = endpoint_name
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        return self.run_rounds(context)

    def run_rounds(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Play every round whose feedback is in; defer until the next one, or return the decision."""
        from include.rollout import step
        from include.rollout.feedback import read_delta

        hook = self.endpoint()
        record = self.require_record(context)
        while record.experiment.decision is None:
            record = self.push_weights(context, record, hook)
            record = self.admit_new_challenger(context, record, hook)
            experiment = record.experiment
            with closing(hook.feedback_reader()) as reader:
                delta = read_delta(reader, experiment.cursor, [arm.name for arm in experiment.arms], record.weights_generation)
            if delta.foreign:
                self.log.warning("feedback of variants outside the experiment (ignored): %s", delta.foreign)
            waited = (dt.datetime.now(dt.UTC) - _last_round_at(experiment)).total_seconds()
            if delta.served_total < self.round_size and waited < self.max_round_seconds:
                self.log.info("%d of %d predictions for round %d; next look in %s s",
                              delta.served_total, self.round_size, len(experiment.rounds), self.poll_seconds)
                self.defer(trigger=TimeDeltaTrigger(dt.timedelta(seconds=self.poll_seconds)), method_name="run_rounds")
            experiment, played = step(experiment, delta.feedback, dt.datetime.now(dt.UTC))
            record = record.with_experiment(experiment)
            self.commit(context, record)
            self.log.info("%s", _round_line(played))
            self.act_on_round(context, record, played)
        record = self.push_weights(context, record, hook)
        decision = record.experiment.decision
        # The rounds read the variants' predictions and rewards and write the record and the variants' weights.
        variants = self.variant_datasets(arm.name for arm in record.experiment.arms)
        self.report_lineage(variants, [storage_dataset(self.record_uri(context)), *variants])
        return {"action": decision.action, "rule": decision.rule, "winner": decision.winner, "reason": decision.reason,
                "rounds": len(record.experiment.rounds), "record_uri": self.record_uri(context)}

    def admit_new_challenger(self, context: Context, record: RolloutRecord, hook: EndpointHook) -> RolloutRecord:
        """Add the registry's new challenger (approved while this experiment runs) as an arm and a variant."""
        from include.rollout import add_arm

        registry = self.registry()
        holder = registry.version_for_alias(CHALLENGER)
        if holder is None or variant_name(holder.version) in record.models:
            return record
        champion = registry.champion()
        problem = _not_rollable(holder, champion) if champion else "no champion"
        if problem:
            return record
        arm = variant_name(holder.version)
        self.log.info("challenger v%s was approved during the experiment: it joins at the minimum weight", holder.version)
        hook.add_variant(holder.version, 0.0)
        record = RolloutRecord(
            record.endpoint, add_arm(record.experiment, arm), {**record.models, arm: ArmModel(holder.version, holder.model_uri)},
        )
        self.commit(context, record)
        return self.push_weights(context, record, hook)

    def act_on_round(self, context: Context, record: RolloutRecord, played: RoundRecord) -> None:
        """Page on a sample-ratio mismatch; reject and page for each challenger the guardrail dropped."""
        settings = load_settings()
        if played.srm.mismatch:
            self.page(
                context, f"[reviewflow] rollout round {played.index}: traffic does not follow the weights",
                f"{played.srm.note}. Routing is broken (a stale endpoint config, a failing variant): check the endpoint "
                f"{record.endpoint} before trusting this experiment.\n" + runbook_line(settings, SRM_ANCHOR),
            )
        for arm in played.decision.dropped:
            reason = record.experiment.arm(arm).status_reason
            version = record.version_of(arm)
            registry = self.registry()
            registry.set_approval(version, REJECTED, ROLLOUT_APPROVER, reason)
            registry.set_rollout_outcome(version, ROLLED_BACK, reason)
            self.page(
                context, f"[reviewflow] rollout: {self.model_name} v{version} rolled back",
                f"The guardrail dropped variant {arm} in round {played.index}: {reason}. It gets no more traffic "
                f"and is Rejected in the registry; the champion serves in its place.\n"
                + runbook_line(settings, ROLLBACK_ANCHOR),
            )


def winner_of(experiment: ExperimentState) -> str:
    """The arm that serves all traffic once the experiment decided: the winner, else the champion."""
    assert experiment.decision is not None
    return experiment.decision.winner or experiment.champion


def _last_round_at(experiment: ExperimentState) -> dt.datetime:
    return dt.datetime.fromisoformat(experiment.rounds[-1].at if experiment.rounds else experiment.started_at)


def _round_line(played: RoundRecord) -> str:
    arms = ", ".join(
        f"{arm}: served {played.served[arm]}, P(best) {played.p_best[arm]:.3f}, next weight {played.next_weights[arm]:.3f}"
        for arm in played.served
    )
    return f"round {played.index}: {arms}; {played.srm.note}; {played.decision.action}: {played.decision.reason}"


class ConcludeRolloutOperator(_RolloutTask):
    """Act on the experiment's decision in the registry and on the endpoint.

    * ``promote``: the winner becomes ``champion`` (alias) with outcome ``promoted``; the endpoint sends it
      all traffic and drops every other variant.
    * ``keep_champion`` / ``rollback``: the champion gets all traffic, the challengers' variants go;
      challengers not already rolled back get outcome ``not_promoted``.  A rollback pages.

    The ``challenger`` alias is removed from every version the experiment decided.  Every step is a
    set, not an append, so a retry finishes what an earlier try started.

    :param endpoint_name: the endpoint the experiment ran on (templated).
    :param model_name: registered model / model package group (templated).
    :param aws_conn_id: connection of the registry, endpoint, storage and pages on ``aws`` (templated).
    :param region_name: their region; ``None``: the connection's (templated).
    """

    template_fields = (*AWS_TEMPLATE_FIELDS, "endpoint_name", "model_name")
    ui_color = "#d4f0d8"

    def __init__(
        self, *, endpoint_name: str = DEFAULT_ENDPOINT_NAME, model_name: str = DEFAULT_MODEL_NAME, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        record = self.require_record(context)
        experiment = record.experiment
        decision = experiment.decision
        if decision is None:
            raise AirflowException("the experiment has not decided yet: run bandit_rounds of this run first")
        registry = self.registry()
        winner = winner_of(experiment)
        for arm in experiment.arms:
            version = record.version_of(arm.name)
            if arm.name == experiment.champion:
                continue
            if arm.name == winner:
                registry.set_alias(CHAMPION, version)
                registry.set_rollout_outcome(version, PROMOTED, decision.reason)
            elif arm.status == "live":
                registry.set_rollout_outcome(version, NOT_PROMOTED, decision.reason)
            holder = registry.version_for_alias(CHALLENGER)
            if holder is not None and holder.version == version:
                registry.remove_alias(CHALLENGER)
        hook = self.endpoint()
        present = {variant.name for variant in hook.describe().variants}  # a rerun: the others are gone already
        served = hook.set_weights({arm.name: float(arm.name == winner) for arm in experiment.arms if arm.name in present})
        for arm in experiment.arms:
            if arm.name != winner:
                served = hook.remove_variant(arm.name)
        conclusion = {"action": decision.action, "rule": decision.rule, "winner": winner,
                      "winner_version": record.version_of(winner), "reason": decision.reason,
                      "address": served.address}
        self.commit(context, RolloutRecord(record.endpoint, experiment, record.models, record.weights_generation, conclusion))
        emit_rollout_decision(context, decision.action)
        self.report_lineage(
            [storage_dataset(self.record_uri(context))],
            [*self.model_datasets(model.version for model in record.models.values()),
             *self.variant_datasets(arm.name for arm in experiment.arms)],
        )
        if decision.action == "rollback":
            self.page(
                context, f"{ROLLBACK_TITLE}: {self.model_name} stays on v{record.version_of(winner)}",
                f"{decision.reason}. Every challenger failed the guardrail; the champion serves all traffic.\n"
                + runbook_line(load_settings(), ROLLBACK_ANCHOR),
            )
        self.log.info("%s: %s serves all traffic (%s)", decision.action, winner, decision.reason)
        return conclusion


class StartReplayOperator(ReportsLineage, BaseOperator):
    """``local``: start the replay traffic generator (:mod:`include.rollout.replay`) for this run, detached.

    It sends the challenger's features run's ``replay`` split to the endpoint and posts each reward.  A
    retry finds the generator running (or finished) and starts no second one; a rerun after the experiment
    decided starts none.

    :param models: the XCom of ``resolve_models`` (templated).
    :param rate: requests per second (templated).
    :param concurrency: concurrent clients (templated).
    :param max_requests: requests to send in all (templated).
    :param seed: order of the reviews (templated).
    :param endpoint_name: the endpoint to send to (templated).
    """

    template_fields = ("models", "rate", "concurrency", "max_requests", "seed", "endpoint_name")
    template_fields_renderers = {"models": "json"}
    ui_color = "#eeeeee"

    def __init__(
        self, *, models: Mapping[str, Any], rate: float = 100, concurrency: int = 8, max_requests: int = 6000,
        seed: int = 42, endpoint_name: str = DEFAULT_ENDPOINT_NAME, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.models = models
        self.rate = rate
        self.concurrency = concurrency
        self.max_requests = max_requests
        self.seed = seed
        self.endpoint_name = endpoint_name

    def execute(self, context: Context) -> dict[str, Any]:
        from include.rollout.replay_process import ReplayProcess

        settings = load_settings()
        process = ReplayProcess(local_path(rollout_uri(settings, run_key(context))))
        record = local_path(join_uri(rollout_uri(settings, run_key(context)), RECORD_FILE))
        if record.is_file() and RolloutRecord.from_json(record.read_bytes()).experiment.decision is not None:
            # A rerun after the decision: more traffic would only add predictions nobody counts.
            self.log.info("the experiment of this run has decided: no replay traffic to send")
            return {"pid": None, "progress": str(process.progress), "log": str(process.log)}
        challenger = self.models["challengers"][0]
        features = join_uri(settings.data_root, "features", challenger["run_key"])
        manifest = LocalStorage().read_json(join_uri(features, "manifest.json"))
        started = process.start(
            data_root=local_path(settings.data_root), endpoint_name=self.endpoint_name,
            replay_dir=local_path(join_uri(features, "replay")), snapshot_dir=local_path(manifest["snapshot_uri"]),
            rate=self.rate, concurrency=self.concurrency, max_requests=self.max_requests, seed=self.seed,
        )
        self.log.info("replay generator pid %s: %s requests at %s/s, %s clients; progress in %s",
                      started.pid, self.max_requests, self.rate, self.concurrency, process.progress)
        served = [self.models["champion"], *self.models["challengers"]]
        self.report_lineage(
            [storage_dataset(join_uri(features, "replay"))],
            [endpoint_variant_dataset(self.endpoint_name, model["variant"]) for model in served],
        )
        return {"pid": started.pid, "progress": str(process.progress), "log": str(process.log)}


class StopReplayOperator(ReportsLineage, BaseOperator):
    """``local``: stop this run's replay generator (if it still runs) and return the client's own tally."""

    ui_color = "#eeeeee"

    def execute(self, context: Context) -> dict[str, Any]:
        from include.rollout.replay_process import ReplayProcess

        process = ReplayProcess(local_path(rollout_uri(load_settings(), run_key(context))))
        stopped = process.stop()
        tally = process.tally() or {}
        self.report_lineage([storage_dataset(str(process.progress))], [])
        self.log.info("replay generator %s; it answered %s of %s requests", "stopped" if stopped else "had ended",
                      tally.get("answered"), tally.get("target"))
        return tally


class RolloutReportOperator(_RolloutTask):
    """Plots and the run summary's ``rollout`` section: winner, requests to the decision, regret, the reason.

    PNGs (traffic weights per round per variant, cumulative reward and regret against an equal split)
    go to ``<data_root>/reports/<run key>/rollout/``.

    :param endpoint_name: the endpoint the experiment ran on (templated).
    :param aws_conn_id: connection of the storage on ``aws`` (templated).
    :param region_name: its region; ``None``: the connection's (templated).
    """

    template_fields = (*AWS_TEMPLATE_FIELDS, "endpoint_name")
    ui_color = "#d6e4f0"

    def __init__(self, *, endpoint_name: str = DEFAULT_ENDPOINT_NAME, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name

    def execute(self, context: Context) -> dict[str, Any]:
        from include.rollout import series, summary, write_plots

        settings = load_settings()
        key = run_key(context)
        record = self.require_record(context)
        plots_uri = join_uri(settings.data_root, "reports", key, "rollout")
        with tempfile.TemporaryDirectory(prefix="rollout-plots-") as tmp:
            written = write_plots(series(record.experiment), Path(tmp))
            plots = {}
            for path in written:
                uri = join_uri(plots_uri, path.name)
                self.storage(uri).write_bytes(uri, path.read_bytes())
                plots[path.stem] = uri
        section = {
            **summary(record.experiment),
            "conclusion": dict(record.conclusion),
            "versions": {arm: model.version for arm, model in record.models.items()},
            "endpoint": record.endpoint,
            "plots": plots,
            "record_uri": self.record_uri(context),
        }
        summary_uri = update_run_summary(settings, key, "rollout", json.loads(json.dumps(section, default=str)), **self.aws_connection)
        emit_rollout_regret(context, section["regret"])
        self.report_lineage([storage_dataset(self.record_uri(context))], [storage_dataset(summary_uri), *map(storage_dataset, plots.values())])
        self.log.info("rollout summary: %s", {k: v for k, v in section.items() if k != "plots"})
        return {"summary": section.get("winner"), "plots": plots}
