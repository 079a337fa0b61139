"""Reward and regret accounting: the run summary's figures and the series behind the plots.

Regret here is pseudo-regret: requests served times the gap between the best arm's rate and the
serving arm's, ``sum_k served_k * (max_j p_j - p_k)``, with the maximum over the arms present in
that round (joined and not removed; arms the guardrail dropped still count, so a wrongly dropped
good arm shows as regret). The baseline is an equal split (50/50 for two arms) of the same
requests among the same arms. The rates are the true ones in a simulation and the final posterior
means for a live experiment (an estimate: it credits the arms with what the whole experiment learnt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from include.rollout.state import DROPPED, LIVE, ExperimentState


def pseudo_regret(served: np.ndarray, rates: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Regret of each round: ``served`` and ``present`` are ``(..., rounds, arms)``, ``rates`` ``(..., arms)``."""
    rates = np.broadcast_to(rates[..., None, :], present.shape)
    best = np.where(present, rates, -np.inf).max(axis=-1, keepdims=True)
    gap = np.where(present, best - rates, 0.0)
    return (served * gap).sum(axis=-1)


def split_regret(totals: np.ndarray, rates: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Regret of each round had its ``totals`` ``(..., rounds)`` requests been split equally among the present arms."""
    share = present / np.maximum(present.sum(axis=-1, keepdims=True), 1)
    return pseudo_regret(totals[..., None] * share, rates, present)


def lai_robbins_bound(rates: np.ndarray, horizon: int) -> float:
    """Lai and Robbins' asymptotic lower bound on the regret of a consistent policy after ``horizon`` requests.

    ``sum over suboptimal arms of (p* - p_i) / KL(p_i, p*) * ln(horizon)``, KL the Bernoulli divergence.
    """
    best = float(rates.max())
    total = 0.0
    for rate in rates:
        if rate < best:
            total += (best - rate) / bernoulli_kl(float(rate), best)
    return float(total * np.log(horizon))


def bernoulli_kl(p: float, q: float) -> float:
    """KL(Bernoulli(p) || Bernoulli(q)); infinite where q puts no mass on an outcome p has."""

    def term(a: float, b: float) -> float:
        if a == 0:
            return 0.0
        return np.inf if b == 0 else a * np.log(a / b)

    return term(p, q) + term(1 - p, 1 - q)


@dataclass(frozen=True)
class RolloutSeries:
    """Per-round series of an experiment, for the plots (every list has one entry per round)."""

    arms: tuple[str, ...]
    requests: list[int]  # cumulative requests served by the end of each round
    weights: dict[str, list[float]]  # the weights in force while each round was served
    cumulative_reward: list[int]  # rewards of 1 recorded so far (late ones when they arrived)
    split_reward: list[float]  # expected cumulative reward of an equal split of the same requests
    cumulative_regret: list[float]
    split_regret: list[float]
    rates: dict[str, float]
    rates_source: str


def series(state: ExperimentState, rates: dict[str, float] | None = None) -> RolloutSeries:
    """The experiment's series; ``rates`` default to the final posterior means (a live experiment)."""
    names = tuple(arm.name for arm in state.arms)
    source = "given rates" if rates is not None else "final posterior means"
    rates = rates if rates is not None else {arm.name: arm.posterior_mean for arm in state.arms}
    missing = sorted(set(names) - set(rates))
    if missing:
        raise ValueError(f"no rate given for arm(s) {', '.join(missing)}")
    rate = np.array([rates[name] for name in names])
    served = np.array([[record.served.get(name, 0) for name in names] for record in state.rounds], dtype=float)
    served = served.reshape(len(state.rounds), len(names))
    present = np.array([[arm.present_in(record.index) for arm in state.arms] for record in state.rounds], dtype=bool)
    present = present.reshape(served.shape)
    totals = served.sum(axis=1)
    share = present / np.maximum(present.sum(axis=1, keepdims=True), 1)
    return RolloutSeries(
        arms=names,
        requests=[int(v) for v in np.cumsum(totals)],
        weights={name: [float(record.weights.get(name, 0.0)) for record in state.rounds] for name in names},
        cumulative_reward=[int(v) for v in np.cumsum([sum(record.successes.values()) for record in state.rounds])],
        split_reward=[float(v) for v in np.cumsum((totals[:, None] * share * rate).sum(axis=1))],
        cumulative_regret=[float(v) for v in np.cumsum(pseudo_regret(served, rate, present))],
        split_regret=[float(v) for v in np.cumsum(split_regret(totals, rate, present))],
        rates={name: float(rates[name]) for name in names},
        rates_source=source,
    )


def summary(state: ExperimentState, rates: dict[str, float] | None = None) -> dict[str, Any]:
    """The run summary's rollout section: outcome, requests to decision, regret and why (JSON-ready)."""
    figures = series(state, rates)
    decision = state.decision
    regret = figures.cumulative_regret[-1] if state.rounds else 0.0
    baseline = figures.split_regret[-1] if state.rounds else 0.0
    return {
        "status": decision.action if decision else "running",
        "winner": decision.winner if decision else None,
        "rule": decision.rule if decision else None,
        "reason": state.rounds[-1].decision.reason if state.rounds else "no round yet",
        "dropped": [arm.name for arm in state.arms if arm.status == DROPPED],
        "requests_to_decision": figures.requests[-1] if decision else None,
        "requests": figures.requests[-1] if state.rounds else 0,
        "rounds": len(state.rounds),
        "regret": round(regret, 3),
        "split_regret": round(baseline, 3),
        "regret_ratio": round(regret / baseline, 4) if baseline > 0 else None,
        "rates_source": figures.rates_source,
        "srm_mismatch_rounds": [record.index for record in state.rounds if record.srm.mismatch],
        "arms": {
            arm.name: {
                "status": arm.status,
                "served": arm.served,
                "successes": arm.successes,
                "failures": arm.failures,
                "posterior_mean": round(arm.posterior_mean, 5),
                "joined_round": arm.joined_round,
                **({"left_round": arm.left_round, "reason": arm.status_reason} if arm.status != LIVE else {}),
            }
            for arm in state.arms
        },
    }
