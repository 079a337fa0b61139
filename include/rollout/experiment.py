"""One live experiment: create it, advance it a round with new feedback, add or remove an arm.

All functions are pure: they return a new :class:`~include.rollout.state.ExperimentState` and leave
the one passed in untouched, so the caller persists a state after every round and resumes from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from include.rollout.allocation import admit, apply_floor
from include.rollout.params import PolicyParams
from include.rollout.posterior import CHAMPION, posterior_parameters
from include.rollout.rules import Action, Evaluation, Rule, evaluate
from include.rollout.srm import check_sample_ratio
from include.rollout.state import (
    DROPPED,
    LIVE,
    REMOVED,
    ArmState,
    Cursor,
    Decision,
    ExperimentState,
    Feedback,
    RoundRecord,
)


class FeedbackCursorError(ValueError):
    """A feedback delta does not start where the state's cursor is: applying it would lose or double-count."""


class ExperimentEnded(ValueError):
    """The experiment already has its final decision."""


def create_experiment(
    champion: str,
    challengers: Sequence[str],
    params: PolicyParams | None = None,
    *,
    seed: int,
    now: datetime,
    cursor: Cursor | None = None,
) -> ExperimentState:
    """A new experiment: every arm on a fresh prior, each challenger at the minimum weight (a canary).

    :param seed: seeds every round's Monte Carlo draws (round ``n`` uses ``(seed, n)``), so a retried
        round reproduces the same weights.
    :param cursor: where in the feedback log the experiment starts; earlier feedback is not counted.
    :raises ValueError: on empty, repeated or missing names, or more arms than the floor allows.
    """
    params = params or PolicyParams()
    names = [champion, *challengers]
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"arm names must be non-empty strings, got {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must be unique, got {names}")
    if not challengers:
        raise ValueError("an experiment needs at least one challenger")
    arms = tuple(ArmState(name, params.prior_alpha, params.prior_beta, joined_round=0) for name in names)
    live = np.ones((1, len(names)), dtype=bool)
    new = live.copy()
    new[0, CHAMPION] = False
    start = np.zeros((1, len(names)))
    start[0, CHAMPION] = 1.0
    weights = admit(start, live, new, params.min_weight)[0]
    return ExperimentState(
        champion=champion,
        arms=arms,
        params=params,
        seed=seed,
        started_at=_iso(now),
        cursor=cursor,
        weights=dict(zip(names, map(float, weights))),
    )


def step(state: ExperimentState, feedback: Feedback, now: datetime) -> tuple[ExperimentState, RoundRecord]:
    """Apply one round's feedback and decide: the new state and the round's record.

    The record carries the decision (``record.decision``), the weights to set next
    (``record.next_weights``) and the sample-ratio check of the round (``record.srm``: page on a
    mismatch). Applying the delta the state consumed last again returns the state unchanged with
    that round's record (a retry after a crash is a no-op). An empty delta (``since == until``)
    carries no counts and always makes a new round, so a time budget still ends.

    :raises FeedbackCursorError: if ``feedback.since`` is not the state's cursor (a gap or an overlap).
    :raises ExperimentEnded: if the experiment already decided.
    :raises ValueError: on an unknown arm or a negative or non-integer count, naming it.
    """
    last = state.rounds[-1] if state.rounds else None
    if last is not None and feedback.since != feedback.until and (feedback.since, feedback.until) == (last.since, last.until):
        if tuple(map(_nonzero, _counts(state, feedback))) != tuple(map(_nonzero, (last.served, last.successes, last.failures))):
            raise FeedbackCursorError(
                f"feedback up to cursor {feedback.until!r} was already applied in round {last.index} with other counts"
            )
        return state, last
    if state.decision is not None:
        raise ExperimentEnded(f"the experiment ended in round {last.index}: {state.decision.reason}")
    if feedback.since != state.cursor:
        raise FeedbackCursorError(
            f"feedback starts after cursor {feedback.since!r} but the state has consumed up to {state.cursor!r}"
        )
    served, successes, failures = _counts(state, feedback)
    if feedback.since == feedback.until and any(count for counts in (served, successes, failures) for count in counts.values()):
        raise ValueError(f"feedback with counts must move the cursor (since == until == {feedback.until!r})")

    index = len(state.rounds)
    arms = tuple(
        replace(
            arm,
            served=arm.served + served[arm.name],
            successes=arm.successes + successes[arm.name],
            failures=arm.failures + failures[arm.name],
        )
        for arm in state.arms
    )
    srm_served = served if feedback.srm_served is None else {arm: int(n) for arm, n in feedback.srm_served.items()}
    srm = check_sample_ratio(srm_served, dict(state.weights), state.params.srm_p_value)
    spent, budget_note = _budget(state, arms, now)
    names = [arm.name for arm in arms]
    alpha, beta = posterior_parameters(
        np.array([[arm.successes for arm in arms]]),
        np.array([[arm.failures for arm in arms]]),
        np.array([[arm.prior_alpha for arm in arms]]),
        np.array([[arm.prior_beta for arm in arms]]),
    )
    evaluation = evaluate(
        alpha,
        beta,
        np.array([[arm.rewarded for arm in arms]]),
        np.array([[arm.status == LIVE for arm in arms]]),
        np.array([spent]),
        state.params,
        np.random.default_rng([state.seed, index]),
    )
    decision = _decision(evaluation, names, arms, state.params, budget_note)
    guardrail_reasons = dict(zip(decision.dropped, _guardrail_texts(evaluation, names, state.params)))
    arms = tuple(
        replace(arm, status=DROPPED, left_round=index, status_reason=guardrail_reasons[arm.name])
        if arm.name in guardrail_reasons
        else arm
        for arm in arms
    )
    next_weights = _by_arm(names, evaluation.weights[0])
    record = RoundRecord(
        index=index,
        at=_iso(now),
        since=feedback.since,
        until=feedback.until,
        weights=dict(state.weights),
        served=served,
        successes=successes,
        failures=failures,
        p_best=_by_arm(names, evaluation.p_best[0]),
        expected_loss=_by_arm(names, evaluation.expected_loss[0]),
        p_below_champion=_by_arm(names, evaluation.p_below_champion[0]),
        srm=srm,
        decision=decision,
        next_weights=next_weights,
    )
    new_state = replace(state, arms=arms, cursor=feedback.until, weights=next_weights, rounds=(*state.rounds, record))
    return new_state, record


def add_arm(state: ExperimentState, name: str) -> ExperimentState:
    """A new challenger joins between rounds: fresh prior, the minimum weight; the others keep their counts.

    Call it after :func:`step` and before the weights are pushed, so the next round is served with it.
    Adding an arm that is already live is a no-op (a retried task adds it once).
    :raises ValueError: if the name was dropped or removed before, the experiment ended, or the floor
        cannot be given to one more arm.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"arm names must be non-empty strings, got {name!r}")
    if state.decision is not None:
        raise ExperimentEnded(f"cannot add {name!r}: the experiment ended: {state.decision.reason}")
    existing = {arm.name: arm for arm in state.arms}
    if name in existing:
        if existing[name].status == LIVE:
            return state
        raise ValueError(f"arm {name!r} was {existing[name].status} in round {existing[name].left_round} and cannot rejoin")
    params = state.params
    arms = (*state.arms, ArmState(name, params.prior_alpha, params.prior_beta, joined_round=len(state.rounds)))
    live = np.array([[arm.status == LIVE for arm in arms]])
    new = np.zeros_like(live)
    new[0, -1] = True
    current = np.array([[state.weights.get(arm.name, 0.0) for arm in arms]])
    weights = admit(current, live, new, params.min_weight)[0]
    return replace(state, arms=arms, weights=_by_arm([arm.name for arm in arms], weights))


def remove_arm(state: ExperimentState, name: str, reason: str) -> ExperimentState:
    """Take a challenger out between rounds (its model withdrawn); its weight goes to the others pro rata.

    Its counts stay in the state; rewards that arrive for it later are still recorded.
    :raises ValueError: for the champion, the last live challenger (end the rollout instead), an arm
        not live, or an ended experiment.
    """
    if state.decision is not None:
        raise ExperimentEnded(f"cannot remove {name!r}: the experiment ended: {state.decision.reason}")
    arm = state.arm(name)
    if name == state.champion:
        raise ValueError("the champion cannot be removed: it is what traffic falls back to")
    if arm.status != LIVE:
        raise ValueError(f"arm {name!r} is already {arm.status}")
    if len(state.live_arms) <= 2:
        raise ValueError(f"{name!r} is the last live challenger: end the rollout instead of removing it")
    index = len(state.rounds)
    arms = tuple(replace(a, status=REMOVED, left_round=index, status_reason=reason) if a.name == name else a for a in state.arms)
    live = np.array([[a.status == LIVE for a in arms]])
    current = np.array([[state.weights.get(a.name, 0.0) for a in arms]])
    weights = apply_floor(current, live, state.params.min_weight)[0]
    return replace(state, arms=arms, weights=_by_arm([a.name for a in arms], weights))


# ---------------------------------------------------------------- helpers


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"times must be timezone-aware, got {moment!r}")
    return moment.isoformat()


def _by_arm(names: Sequence[str], values: np.ndarray) -> dict[str, float | None]:
    return {name: None if np.isnan(value) else float(value) for name, value in zip(names, values)}


def _nonzero(counts: Mapping[str, int]) -> dict[str, int]:
    return {arm: count for arm, count in counts.items() if count}


def _counts(state: ExperimentState, feedback: Feedback) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """The delta's counts for every arm of the state (0 where absent), validated."""
    names = [arm.name for arm in state.arms]
    result = []
    for kind in ("served", "successes", "failures"):
        given = getattr(feedback, kind)
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"feedback {kind} names unknown arm(s) {', '.join(map(repr, unknown))} (arms: {', '.join(names)})")
        for arm, count in given.items():
            if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
                raise ValueError(f"feedback {kind}[{arm!r}] must be a non-negative integer, got {count!r}")
        result.append({name: int(given.get(name, 0)) for name in names})
    return result[0], result[1], result[2]


def _budget(state: ExperimentState, arms: Sequence[ArmState], now: datetime) -> tuple[bool, str]:
    """Whether the budget ran out with this round, and what was spent."""
    params = state.params
    served = sum(arm.served for arm in arms)
    hours = (now - datetime.fromisoformat(state.started_at)).total_seconds() / 3600
    if params.budget_requests is not None and served >= params.budget_requests:
        return True, f"{served} requests served of a budget of {params.budget_requests}"
    if params.budget_hours is not None and hours >= params.budget_hours:
        return True, f"{hours:.2f} h elapsed of a budget of {params.budget_hours:g} h"
    return False, ""


def _guardrail_texts(evaluation: Evaluation, names: Sequence[str], params: PolicyParams) -> list[str]:
    champion = names[CHAMPION]
    return [
        f"guardrail: P({names[i]} < {champion} - {params.guardrail_margin:g}) = "
        f"{evaluation.p_below_champion[0, i]:.4f} >= {params.guardrail_probability:g}"
        for i in np.flatnonzero(evaluation.dropped[0])
    ]


def _decision(
    evaluation: Evaluation, names: Sequence[str], arms: Sequence[ArmState], params: PolicyParams, budget_note: str
) -> Decision:
    """The round's decision with its reason and numbers, from the evaluation of a batch of one."""
    action, rule = Action(evaluation.action[0]), Rule(evaluation.rule[0])
    p_best, loss = evaluation.p_best[0], evaluation.expected_loss[0]
    live = evaluation.live[0]
    leader = int(p_best.argmax())
    dropped = tuple(names[i] for i in np.flatnonzero(evaluation.dropped[0]))
    rewarded = {arm.name: arm.rewarded for arm, is_live in zip(arms, live) if is_live}
    numbers: dict[str, object] = {
        "leader": names[leader],
        "p_best": float(p_best[leader]),
        "expected_loss": float(loss[leader]),
        "rewarded": rewarded,
        "posterior_mean": {arm.name: arm.posterior_mean for arm in arms},
        "p_best_threshold": params.p_best_threshold,
        "expected_loss_threshold": params.expected_loss_threshold,
        "min_rewarded_per_arm": params.min_rewarded_per_arm,
    }
    if dropped:
        numbers["p_below_champion"] = {names[i]: float(evaluation.p_below_champion[0, i]) for i in np.flatnonzero(evaluation.dropped[0])}
        numbers["guardrail_margin"] = params.guardrail_margin
        numbers["guardrail_probability"] = params.guardrail_probability
    guardrail = "; ".join(_guardrail_texts(evaluation, names, params))
    winner = names[evaluation.winner[0]] if evaluation.winner[0] >= 0 else None
    confident = (
        f"{names[leader]} has P(best) {p_best[leader]:.4f} >= {params.p_best_threshold:g} and expected loss "
        f"{loss[leader]:.5f} < {params.expected_loss_threshold:g}"
    )
    if rule == Rule.GUARDRAIL:
        reason = f"rollback to champion {names[CHAMPION]}: every challenger failed the {guardrail}"
    elif rule == Rule.STOP_RULE:
        verb = f"promote {winner}" if action == Action.PROMOTE else f"keep champion {winner}"
        reason = f"{verb}: {confident}, every live arm has >= {params.min_rewarded_per_arm} rewarded requests"
    elif rule == Rule.BUDGET:
        numbers["budget"] = budget_note
        challengers = [i for i in range(1, len(names)) if live[i]]
        best = max(challengers, key=lambda i: p_best[i])
        if action == Action.PROMOTE:
            reason = f"budget spent ({budget_note}): promote {winner}, P(best) {p_best[best]:.4f} >= {params.p_best_threshold:g}"
        else:
            reason = (
                f"budget spent ({budget_note}) undecided: keep champion {winner}; the best challenger {names[best]} has "
                f"P(best) {p_best[best]:.4f} < {params.p_best_threshold:g}"
            )
    else:
        fewest = min(rewarded, key=lambda arm: rewarded[arm])
        if rewarded[fewest] < params.min_rewarded_per_arm:
            why = f"{fewest} has {rewarded[fewest]} rewarded requests of the {params.min_rewarded_per_arm} required"
        elif p_best[leader] < params.p_best_threshold:
            why = f"leader {names[leader]} has P(best) {p_best[leader]:.4f} < {params.p_best_threshold:g}"
        else:
            why = f"leader {names[leader]} has expected loss {loss[leader]:.5f} >= {params.expected_loss_threshold:g}"
        reason = f"continue: {why}" + (f"; dropped {', '.join(dropped)} by the {guardrail}" if dropped else "")
    return Decision(action.name.lower(), rule.name.lower(), winner, dropped, reason, numbers)
