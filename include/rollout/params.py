"""The rollout policy's parameters: every default in one place, validated on construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

THOMPSON = "ts"
TOP_TWO_THOMPSON = "top-two-ts"
FIXED_SPLIT = "ab"
POLICIES = (THOMPSON, TOP_TWO_THOMPSON, FIXED_SPLIT)


@dataclass(frozen=True)
class PolicyParams:
    """How the rollout allocates traffic and when it stops (defaults chosen by simulation: docs/bandit.md).

    :param policy: ``ts`` (weights = P(best)), ``top-two-ts`` (Russo's top-two allocation) or ``ab``
        (equal weights; same stop rule and guardrail).
    :param top_two_beta: top-two only: probability of playing the top sample.
    :param min_weight: exploration floor: every live arm gets at least this share of a round's traffic.
    :param min_rewarded_per_arm: the stop rule waits until every live arm has this many requests whose
        reward has arrived (not merely served: a served request without its reward carries no evidence).
    :param p_best_threshold: the leader's P(best) the stop rule (and a budget-end promotion) needs.
    :param expected_loss_threshold: the leader's expected loss (posterior mean of max_j p_j - p_leader)
        must be below this.
    :param guardrail_margin: a challenger is broken when its rate is below the champion's minus this ...
    :param guardrail_probability: ... with at least this posterior probability.
    :param budget_requests: served requests after which an undecided experiment ends (None: no limit).
    :param budget_hours: hours after the start after which an undecided experiment ends (None: no limit).
    :param draws: Monte Carlo draws per posterior per round (at least 10,000).
    :param srm_p_value: a round's served split is a sample-ratio mismatch below this chi-square p-value.
    :param prior_alpha: Beta prior successes + 1 of every arm, including arms that join later.
    :param prior_beta: Beta prior failures + 1 of every arm.
    """

    policy: str = THOMPSON
    top_two_beta: float = 0.5
    min_weight: float = 0.1
    min_rewarded_per_arm: int = 300
    p_best_threshold: float = 0.95
    expected_loss_threshold: float = 0.002
    guardrail_margin: float = 0.02
    guardrail_probability: float = 0.99
    budget_requests: int | None = None
    budget_hours: float | None = None
    draws: int = 10_000
    srm_p_value: float = 0.0001
    prior_alpha: float = 1.0
    prior_beta: float = 1.0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        for name in ("top_two_beta", "p_best_threshold", "guardrail_probability"):
            _check_number(name, getattr(self, name), 0.0, 1.0, open_low=True)
        _check_number("min_weight", self.min_weight, 0.0, 0.5)
        _check_number("expected_loss_threshold", self.expected_loss_threshold, 0.0, 1.0, open_low=True)
        _check_number("guardrail_margin", self.guardrail_margin, 0.0, 1.0)
        _check_number("srm_p_value", self.srm_p_value, 0.0, 1.0, open_low=True)
        for name in ("prior_alpha", "prior_beta"):
            _check_number(name, getattr(self, name), 0.0, math.inf, open_low=True)
        _check_int("min_rewarded_per_arm", self.min_rewarded_per_arm, 0)
        _check_int("draws", self.draws, 10_000)
        if self.budget_requests is not None:
            _check_int("budget_requests", self.budget_requests, 1)
        if self.budget_hours is not None:
            _check_number("budget_hours", self.budget_hours, 0.0, math.inf, open_low=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PolicyParams:
        """Build from a mapping (a trigger form's params, a stored state); unknown keys are an error."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown rollout parameter(s): {', '.join(unknown)}")
        return cls(**values)


def _check_number(name: str, value: object, low: float, high: float, open_low: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value > high or value < low or (open_low and value == low):
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
