"""Simulate the rollout policy on Bernoulli arms: many runs at once, with the live policy's own code.

``python -m include.rollout.simulate --arms 0.85,0.88 --requests 10000 --runs 500 --round-size 200``
prints one JSON object. The first arm is the champion. Each run serves ``--requests`` requests in
rounds of ``--round-size``; every request is routed by the round's weights, and its reward is the
next outcome of the serving arm's own pre-drawn Bernoulli sequence (so all policies meet the same
rewards under the same ``--seed``). Rewards arrive ``--reward-delay`` requests after their request.
After each round :func:`include.rollout.rules.evaluate` (the function a live experiment's ``step``
calls) decides; once a run has decided, the rest of its horizon goes to the arm it chose (the
winner, or the champion after a rollback or an undecided budget end). The budget defaults to the
horizon, so an undecided run ends with the budget rule at the last round.

Figures (regret is pseudo-regret, see :mod:`include.rollout.accounting`):

* ``regret_thompson_mean``: mean regret over the horizon of the policy that ran (``--policy``,
  Thompson sampling by default); ``regret_ab_mean``: an equal (50/50) split of every request over
  the whole horizon, no stopping; ``regret_ratio`` is their quotient.
* ``wrong_winner_rate``: runs whose final arm is not the best arm of the run.
* ``median_decision_requests``: requests served when the run decided (the horizon if only the
  budget end decided); ``rollback_rate``: runs ended by the guardrail.
* ``lai_robbins_bound``: Lai and Robbins' asymptotic regret lower bound for these arms at this horizon.
* ``regret_before_decision_mean`` / ``regret_after_decision_mean``: the regret split at the decision
  (exploration, and wrong winners serving the rest of the horizon).

``--add-arm-at N:P`` adds an arm of rate P to the runs still undecided when request N is reached (at
the first round boundary from N), with a fresh prior at the minimum weight; the 50/50 baseline
splits equally among the arms present (three-way from then on).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from include.rollout.accounting import lai_robbins_bound, pseudo_regret, split_regret
from include.rollout.allocation import admit
from include.rollout.params import POLICIES, PolicyParams
from include.rollout.posterior import CHAMPION, posterior_parameters
from include.rollout.rules import Action, Rule, evaluate
from include.rollout.srm import srm_p_values


@dataclass(frozen=True)
class Scenario:
    """The arms and traffic of a simulation.

    :param rates: true success rate of each arm; the first is the champion.
    :param added_arm: ``(request, rate)`` of an arm that joins mid-run, or None.
    :param budget_requests: requests after which an undecided run ends (default: the horizon).
    """

    rates: tuple[float, ...]
    requests: int = 10_000
    runs: int = 500
    round_size: int = 200
    added_arm: tuple[int, float] | None = None
    reward_delay: int = 0
    budget_requests: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.rates) < 2 or not all(0.0 <= rate <= 1.0 for rate in self.rates):
            raise ValueError(f"need at least two arm rates in [0, 1], got {self.rates}")
        for name in ("requests", "runs", "round_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.reward_delay < 0:
            raise ValueError(f"reward_delay must be >= 0, got {self.reward_delay}")
        if self.added_arm is not None and not (0 < self.added_arm[0] < self.requests and 0.0 <= self.added_arm[1] <= 1.0):
            raise ValueError(f"added arm must join within the horizon with a rate in [0, 1], got {self.added_arm}")
        if self.budget_requests is not None and not 0 < self.budget_requests <= self.requests:
            raise ValueError(f"budget_requests must be in [1, requests], got {self.budget_requests}")


def simulate(scenario: Scenario, params: PolicyParams) -> dict[str, Any]:
    """Run every run of ``scenario`` under ``params`` and return the figures (see the module docstring)."""
    started = time.perf_counter()
    rates = np.array([*scenario.rates, *([scenario.added_arm[1]] if scenario.added_arm else [])])
    runs, arms, horizon, size = scenario.runs, len(rates), scenario.requests, scenario.round_size
    budget = scenario.budget_requests or horizon
    rounds = -(-budget // size)
    new_arm = len(scenario.rates) if scenario.added_arm else None
    join_round = -(-scenario.added_arm[0] // size) if scenario.added_arm else None

    # The n-th request an arm serves in run r gets outcome stacks[r, arm, n]: the same for every policy.
    outcome_rng = np.random.default_rng([scenario.seed, 1])
    stacks = np.stack([outcome_rng.random((runs, horizon), dtype=np.float32) < rate for rate in rates], axis=1)
    rng = np.random.default_rng([scenario.seed, 2])

    joined = np.zeros((runs, arms), dtype=bool)
    joined[:, : len(scenario.rates)] = True
    live = joined.copy()
    start = np.zeros((runs, arms))
    start[:, CHAMPION] = 1.0
    challengers = joined.copy()
    challengers[:, CHAMPION] = False
    weights = admit(start, live, challengers, params.min_weight)
    served = np.zeros((runs, arms), dtype=np.int64)
    successes = np.zeros((runs, arms), dtype=np.int64)
    failures = np.zeros((runs, arms), dtype=np.int64)
    served_log = np.zeros((runs, rounds, arms), dtype=np.int64)
    present_log = np.zeros((runs, rounds, arms), dtype=bool)
    arm_log = np.zeros((runs, horizon), dtype=np.int8)
    outcome_log = np.zeros((runs, horizon), dtype=bool)
    active = np.ones(runs, dtype=bool)
    decided_at = np.full(runs, budget)
    winner = np.full(runs, CHAMPION)
    action = np.full(runs, int(Action.CONTINUE))
    rule = np.full(runs, int(Rule.NONE))
    ever_dropped = np.zeros((runs, arms), dtype=bool)
    srm_tested = srm_flagged = 0
    observed_until = 0

    for index in range(rounds):
        first, last = index * size, min(budget, (index + 1) * size)
        if index == join_round:
            newcomer = np.zeros((runs, arms), dtype=bool)
            newcomer[active, new_arm] = True
            joined |= newcomer
            live |= newcomer
            weights[active] = admit(weights[active], live[active], newcomer[active], params.min_weight)
        rows = np.flatnonzero(active)
        # Route each request of the round by the weights; it takes the next outcome of its arm.
        cumulative = np.cumsum(weights[rows], axis=1)
        arm = np.minimum((rng.random((rows.size, last - first))[:, :, None] >= cumulative[:, None, :]).sum(axis=2), arms - 1)
        one_hot = arm[:, :, None] == np.arange(arms)
        position = np.take_along_axis(served[rows][:, None, :] + np.cumsum(one_hot, axis=1) - 1, arm[:, :, None], axis=2)[:, :, 0]
        arm_log[rows, first:last] = arm
        outcome_log[rows, first:last] = stacks[rows[:, None], arm, position]
        round_served = one_hot.sum(axis=1)
        statistic, p_value, testable = srm_p_values(round_served, weights[rows])
        srm_tested += int(testable.sum())
        srm_flagged += int((testable & (p_value < params.srm_p_value)).sum())
        served[rows] += round_served
        served_log[rows, index] = round_served
        present_log[rows, index] = joined[rows]
        # Rewards of the requests up to `reward_delay` before the round's end have arrived.
        arrived = max(0, last - scenario.reward_delay)
        if arrived > observed_until:
            window = arm_log[rows, observed_until:arrived][:, :, None] == np.arange(arms)
            wins = outcome_log[rows, observed_until:arrived][:, :, None]
            successes[rows] += (window & wins).sum(axis=1)
            failures[rows] += (window & ~wins).sum(axis=1)
            observed_until = arrived
        alpha, beta = posterior_parameters(successes[rows], failures[rows], params.prior_alpha, params.prior_beta)
        spent = np.full(rows.size, last >= budget)
        verdict = evaluate(alpha, beta, successes[rows] + failures[rows], live[rows], spent, params, rng)
        ever_dropped[rows] |= verdict.dropped
        live[rows] = verdict.live
        weights[rows] = verdict.weights
        ended = verdict.winner >= 0
        done = rows[ended]
        decided_at[done] = last
        winner[done] = verdict.winner[ended]
        action[done] = verdict.action[ended]
        rule[done] = verdict.rule[ended]
        active[done] = False
        if not active.any():
            break

    # After the decision the rest of the horizon goes to the chosen arm.
    best_present = np.where(joined, rates, -np.inf).max(axis=1)
    chosen = rates[winner]
    exploring = pseudo_regret(served_log, rates, present_log).sum(axis=1)
    regret = exploring + (horizon - decided_at) * (best_present - chosen)
    grid = np.arange(0, horizon, size)
    baseline_present = np.ones((grid.size, arms), dtype=bool)
    if new_arm is not None:
        baseline_present[:, new_arm] = grid >= scenario.added_arm[0]
    baseline = float(split_regret(np.minimum(size, horizon - grid), rates, baseline_present).sum())
    regret_mean = float(regret.mean())
    reward = (served_log.sum(axis=1) * rates).sum(axis=1) + (horizon - decided_at) * chosen
    return {
        "regret_thompson_mean": round(regret_mean, 3),
        "regret_ab_mean": round(baseline, 3),
        "regret_ratio": round(regret_mean / baseline, 4) if baseline > 0 else None,
        "wrong_winner_rate": round(float(np.mean(chosen < best_present)), 4),
        "median_decision_requests": float(np.median(decided_at)),
        "rollback_rate": round(float(np.mean(action == Action.ROLLBACK)), 4),
        "lai_robbins_bound": round(lai_robbins_bound(rates, horizon), 3),
        "policy": params.policy,
        "regret_p90": round(float(np.percentile(regret, 90)), 3),
        "regret_before_decision_mean": round(float(exploring.mean()), 3),
        "regret_after_decision_mean": round(regret_mean - float(exploring.mean()), 3),
        "regret_stderr": round(float(regret.std(ddof=1) / np.sqrt(runs)), 3) if runs > 1 else None,
        "decision_requests_mean": round(float(decided_at.mean()), 1),
        "decision_requests_p90": round(float(np.percentile(decided_at, 90)), 1),
        "outcomes": {
            f"{Action(a).name.lower()}/{Rule(r).name.lower()}": round(float(np.mean((action == a) & (rule == r))), 4)
            for a, r in sorted(set(zip(action.tolist(), rule.tolist())))
        },
        "winner_rates": {str(i): round(float(np.mean(winner == i)), 4) for i in range(arms)},
        "dropped_rate": {str(i): round(float(np.mean(ever_dropped[:, i])), 4) for i in range(1, arms)},
        "added_arm_joined_rate": round(float(np.mean(joined[:, new_arm])), 4) if new_arm is not None else None,
        "reward_mean": round(float(reward.mean()), 2),
        "srm_alarm_rate": round(srm_flagged / srm_tested, 5) if srm_tested else None,
        "scenario": {
            "arms": list(scenario.rates),
            "requests": horizon,
            "runs": runs,
            "round_size": size,
            "add_arm_at": list(scenario.added_arm) if scenario.added_arm else None,
            "reward_delay": scenario.reward_delay,
            "budget_requests": budget,
            "seed": scenario.seed,
        },
        "params": params.to_dict(),
        "seconds": round(time.perf_counter() - started, 2),
    }


def parse_args(argv: list[str] | None = None) -> tuple[Scenario, PolicyParams]:
    """The scenario and policy parameters from the command line."""
    defaults = PolicyParams()
    parser = argparse.ArgumentParser(prog="python -m include.rollout.simulate", description=__doc__.splitlines()[0])
    parser.add_argument("--arms", required=True, help="comma-separated true success rates; the first is the champion")
    parser.add_argument("--requests", type=int, default=10_000, help="horizon: requests per run")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--round-size", type=int, default=200, help="requests per round")
    parser.add_argument("--add-arm-at", metavar="N:P", help="an arm of rate P joins at request N")
    parser.add_argument("--reward-delay", type=int, default=0, help="requests between a request and its reward")
    parser.add_argument("--budget-requests", type=int, help="requests after which an undecided run ends (default: --requests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", choices=POLICIES, default=defaults.policy)
    parser.add_argument("--top-two-beta", type=float, default=defaults.top_two_beta)
    parser.add_argument("--min-weight", type=float, default=defaults.min_weight)
    parser.add_argument("--min-rewarded", type=int, default=defaults.min_rewarded_per_arm, help="rewarded requests per arm before stopping")
    parser.add_argument("--p-best", type=float, default=defaults.p_best_threshold)
    parser.add_argument("--expected-loss", type=float, default=defaults.expected_loss_threshold)
    parser.add_argument("--guardrail-margin", type=float, default=defaults.guardrail_margin)
    parser.add_argument("--guardrail-probability", type=float, default=defaults.guardrail_probability)
    parser.add_argument("--draws", type=int, default=defaults.draws, help="Monte Carlo draws per round (>= 10000)")
    args = parser.parse_args(argv)
    try:
        rates = tuple(float(rate) for rate in args.arms.split(","))
        added = None
        if args.add_arm_at:
            at, rate = args.add_arm_at.split(":")
            added = (int(at), float(rate))
    except ValueError:
        parser.error(f"--arms takes rates like 0.85,0.88 and --add-arm-at N:P like 3000:0.9 (got {args.arms!r}, {args.add_arm_at!r})")
    try:
        scenario = Scenario(
            rates, args.requests, args.runs, args.round_size, added, args.reward_delay, args.budget_requests, args.seed
        )
        params = PolicyParams(
            policy=args.policy,
            top_two_beta=args.top_two_beta,
            min_weight=args.min_weight,
            min_rewarded_per_arm=args.min_rewarded,
            p_best_threshold=args.p_best,
            expected_loss_threshold=args.expected_loss,
            guardrail_margin=args.guardrail_margin,
            guardrail_probability=args.guardrail_probability,
            draws=args.draws,
        )
    except ValueError as error:
        parser.error(str(error))
    return scenario, params


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse the arguments, simulate, print the figures as one JSON object."""
    scenario, params = parse_args(argv)
    result = simulate(scenario, params)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
