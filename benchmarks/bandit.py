"""Bandit rollout benchmark: the default policy on simulated variants, against a 50/50 split on the same seeds.

Runs :func:`include.rollout.simulate.simulate` (the live policy's own rules, vectorised over runs):

1. Default scenario: champion 0.85 vs challenger 0.88, 10,000 requests, 500 runs, rounds of 200,
   under each policy (``ts``, ``top-two-ts``, ``ab``) on the same seeds. Targets for the default
   policy: ``regret_ratio`` <= 0.20 (regret over the horizon / a 50/50 split's), ``wrong_winner_rate``
   <= 0.03, ``median_decision_requests`` <= 4,000.
2. Broken challenger: champion 0.88 vs challenger 0.50: a rollback in every run, median decision
   under 1,000 requests.

``--sweep`` also runs the sensitivity scenarios that chose the defaults (floor, guardrail margin,
stop rule, round size, policy, reward delay, an arm joining) into ``benchmarks/results/bandit_sweep.json``;
docs/bandit.md quotes them. It takes several minutes.

Run: ``python benchmarks/bandit.py [--runs 500] [--seed 0] [--sweep]`` → ``benchmarks/results/bandit.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from include.rollout.params import POLICIES, PolicyParams
from include.rollout.simulate import Scenario, simulate

RESULTS = Path(__file__).resolve().parent / "results" / "bandit.json"
SWEEP_RESULTS = RESULTS.with_name("bandit_sweep.json")
DEFAULT_ARMS = (0.85, 0.88)
BROKEN_ARMS = (0.88, 0.50)
TARGETS = {
    "default": {"regret_ratio_max": 0.20, "wrong_winner_rate_max": 0.03, "median_decision_requests_max": 4000},
    "broken_challenger": {"rollback_rate_min": 1.0, "median_decision_requests_below": 1000},
}
# The figures a sweep row keeps.
FIGURES = (
    "regret_ratio",
    "regret_thompson_mean",
    "regret_before_decision_mean",
    "regret_after_decision_mean",
    "wrong_winner_rate",
    "median_decision_requests",
    "decision_requests_p90",
    "rollback_rate",
    "outcomes",
    "added_arm_joined_rate",
    "seconds",
)


def sweep_cases() -> list[tuple[str, str, tuple[float, ...], dict[str, Any], dict[str, Any]]]:
    """``(group, label, arms, scenario overrides, parameter overrides)`` of every sensitivity run."""
    cases = []
    directions = {"better": DEFAULT_ARMS, "worse": (0.88, 0.85), "broken": BROKEN_ARMS}
    for floor in (0.02, 0.05, 0.1, 0.15, 0.2):
        for name, arms in directions.items():
            cases.append(("min_weight", f"min_weight={floor} challenger {name}", arms, {}, {"min_weight": floor}))
    for margin in (0.0, 0.01, 0.02, 0.03, 0.05):
        for arms in (DEFAULT_ARMS, (0.88, 0.88), (0.88, 0.86), (0.88, 0.80), BROKEN_ARMS):
            cases.append(("guardrail_margin", f"guardrail_margin={margin} arms={arms}", arms, {}, {"guardrail_margin": margin}))
    stop_rules = [(0.95, 0.002, 300), (0.90, 0.002, 300), (0.99, 0.002, 300), (0.95, 0.001, 300), (0.95, 0.005, 300),
                  (0.95, 0.002, 100), (0.95, 0.002, 500), (0.95, 0.002, 1000)]
    for p_best, loss, minimum in stop_rules:
        for name, arms in (("better", DEFAULT_ARMS), ("worse", (0.88, 0.85))):
            params = {"p_best_threshold": p_best, "expected_loss_threshold": loss, "min_rewarded_per_arm": minimum}
            cases.append(("stop_rule", f"p_best>={p_best} loss<{loss} min={minimum} challenger {name}", arms, {}, params))
    for size in (50, 100, 200, 500, 1000):
        cases.append(("round_size", f"round_size={size}", DEFAULT_ARMS, {"round_size": size}, {}))
    for arms in (DEFAULT_ARMS, (0.88, 0.85), (0.85, 0.88, 0.87)):
        for policy in POLICIES:
            cases.append(("policy", f"policy={policy} arms={arms}", arms, {}, {"policy": policy}))
    for beta in (0.75, 0.9):
        cases.append(("policy", f"policy=top-two-ts beta={beta} arms={DEFAULT_ARMS}", DEFAULT_ARMS, {}, {"policy": "top-two-ts", "top_two_beta": beta}))
    for delay in (0, 200, 1000, 3000):
        cases.append(("reward_delay", f"reward_delay={delay}", DEFAULT_ARMS, {"reward_delay": delay}, {}))
    for at, rate in ((600, 0.90), (1000, 0.90), (1000, 0.80)):
        cases.append(("add_arm", f"add_arm_at={at}:{rate}", DEFAULT_ARMS, {"added_arm": (at, rate)}, {}))
    return cases


def run_sweep(runs: int, seed: int) -> dict[str, Any]:
    """Every sensitivity case with ``runs`` runs; rows keep the main figures."""
    rows = []
    for group, label, arms, scenario, params in sweep_cases():
        result = simulate(Scenario(arms, runs=runs, seed=seed, **scenario), PolicyParams(**params))
        rows.append({"group": group, "label": label, **{key: result[key] for key in FIGURES}})
        print(json.dumps(rows[-1]), flush=True)
    return {"runs": runs, "seed": seed, "requests": 10_000, "round_size": 200, "rows": rows}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", action="store_true", help="also run the sensitivity scenarios (several minutes)")
    args = parser.parse_args(argv)
    load_average = os.getloadavg()[0]
    started = time.perf_counter()

    default_params = PolicyParams()
    policies = {
        policy: simulate(Scenario(DEFAULT_ARMS, runs=args.runs, seed=args.seed), PolicyParams(policy=policy))
        for policy in POLICIES
    }
    default = policies[default_params.policy]
    broken = simulate(Scenario(BROKEN_ARMS, runs=args.runs, seed=args.seed), default_params)
    limits, broken_limits = TARGETS["default"], TARGETS["broken_challenger"]
    meets = {
        "regret_ratio": default["regret_ratio"] <= limits["regret_ratio_max"],
        "wrong_winner_rate": default["wrong_winner_rate"] <= limits["wrong_winner_rate_max"],
        "median_decision_requests": default["median_decision_requests"] <= limits["median_decision_requests_max"],
        "broken_rollback_rate": broken["rollback_rate"] >= broken_limits["rollback_rate_min"],
        "broken_median_decision_requests": broken["median_decision_requests"] < broken_limits["median_decision_requests_below"],
    }
    result = {
        "benchmark": "bandit",
        "targets": TARGETS,
        "meets_target": meets,
        "meets_all_targets": all(meets.values()),
        "results": {
            "default": default,
            "broken_challenger": broken,
            "policies": {
                policy: {key: figures[key] for key in FIGURES if key != "added_arm_joined_rate"}
                for policy, figures in policies.items()
            },
        },
        "method": (
            "include.rollout.simulate on Bernoulli arms with the default PolicyParams (the live policy's rules, "
            f"vectorised over runs); {args.runs} runs per scenario, seed {args.seed}, 10,000 requests in rounds of 200; "
            "each run's arms draw their outcomes from per-arm pre-drawn sequences, so every policy meets the same "
            "rewards; regret is pseudo-regret (requests x gap to the best arm) over the whole horizon, the rest of "
            "the horizon after a decision going to the chosen arm; the baseline is a 50/50 split of every request "
            "with no stopping"
        ),
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_start": round(load_average, 2),
        "seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if args.sweep:
        SWEEP_RESULTS.write_text(json.dumps(run_sweep(args.runs, args.seed), indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
