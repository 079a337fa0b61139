"""The policy's round: guardrail, stop rule, budget end and the next weights, for a batch of experiments.

One call evaluates ``runs`` independent experiments at once (a live rollout is a batch of one; the
simulator passes hundreds), all with the same parameters. Arm 0 is the champion. In order:

1. Guardrail (from the first round, no minimum): a live challenger with
   P(rate < champion's rate - margin) >= ``guardrail_probability`` is dropped. If no challenger
   is left the experiment ends in ``ROLLBACK`` (traffic back to the champion).
2. Stop rule, over the arms still live: once every one has ``min_rewarded_per_arm`` rewarded
   requests, the leader (highest P(best)) wins when its P(best) >= ``p_best_threshold`` and its
   expected loss < ``expected_loss_threshold``: ``PROMOTE`` a challenger, or ``KEEP_CHAMPION``.
3. Budget end (the caller says whether the budget is spent): ``PROMOTE`` the challenger with the
   highest P(best) if that is >= ``p_best_threshold``, else ``KEEP_CHAMPION``.
4. Otherwise ``CONTINUE`` with the policy's weights, floored at ``min_weight``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from include.rollout.allocation import allocate
from include.rollout.params import PolicyParams
from include.rollout.posterior import (
    CHAMPION,
    draw_rates,
    expected_loss,
    probability_below_champion,
    probability_best,
)

# Samples held at once (runs x draws x arms float64s): bounds memory when a simulation passes many runs.
MAX_SAMPLES = 4_000_000


class Action(IntEnum):
    """What the round decided for the traffic."""

    CONTINUE = 0
    PROMOTE = 1
    ROLLBACK = 2
    KEEP_CHAMPION = 3


class Rule(IntEnum):
    """Which rule ended the experiment (``NONE`` while it continues)."""

    NONE = 0
    GUARDRAIL = 1
    STOP_RULE = 2
    BUDGET = 3


@dataclass(frozen=True)
class Evaluation:
    """One round's verdict for each of ``runs`` experiments; ``(runs, arms)`` arrays unless noted."""

    p_best: np.ndarray  # over the arms live after the guardrail; 0 for the others
    expected_loss: np.ndarray  # NaN for arms not live
    p_below_champion: np.ndarray  # the guardrail's probability; NaN for the champion and arms not live
    dropped: np.ndarray  # challengers the guardrail dropped this round
    live: np.ndarray  # live after this round
    action: np.ndarray  # (runs,) Action codes
    rule: np.ndarray  # (runs,) Rule codes
    winner: np.ndarray  # (runs,) arm that gets all traffic when the experiment ends, -1 while it continues
    weights: np.ndarray  # next round's weights (one-hot on the winner once ended)


def evaluate(
    alpha: np.ndarray,
    beta: np.ndarray,
    rewarded: np.ndarray,
    live: np.ndarray,
    budget_spent: np.ndarray,
    params: PolicyParams,
    rng: np.random.Generator,
) -> Evaluation:
    """Decide one round for each experiment from its posteriors ``(alpha, beta)`` and rewarded counts.

    :param live: arms taking part (joined, not dropped or removed); the champion must be live.
    :param budget_spent: ``(runs,)`` whether each experiment's budget ran out with this round.
    """
    runs, arms = alpha.shape
    p_best = np.zeros((runs, arms))
    loss = np.full((runs, arms), np.nan)
    below = np.full((runs, arms), np.nan)
    still = live.copy()
    challengers = live.copy()
    challengers[:, CHAMPION] = False
    chunk = max(1, MAX_SAMPLES // (params.draws * arms))
    for start in range(0, runs, chunk):
        part = slice(start, start + chunk)
        samples = draw_rates(alpha[part], beta[part], params.draws, rng)
        below[part] = np.where(challengers[part], probability_below_champion(samples, params.guardrail_margin), np.nan)
        still[part] &= ~(challengers[part] & (below[part] >= params.guardrail_probability))
        p_best[part] = probability_best(samples, still[part])
        loss[part] = expected_loss(samples, still[part])
    dropped = live & ~still

    rows = np.arange(runs)
    leader = p_best.argmax(axis=1)
    has_challenger = still[:, CHAMPION + 1 :].any(axis=1)
    enough = np.all(~still | (rewarded >= params.min_rewarded_per_arm), axis=1)
    confident = (p_best[rows, leader] >= params.p_best_threshold) & (
        loss[rows, leader] < params.expected_loss_threshold
    )
    challenger_p_best = np.where(still, p_best, -1.0)
    challenger_p_best[:, CHAMPION] = -1.0
    best_challenger = challenger_p_best.argmax(axis=1)
    budget_promotes = challenger_p_best[rows, best_challenger] >= params.p_best_threshold

    rollback = ~has_challenger
    stop = ~rollback & enough & confident
    budget_end = ~rollback & ~stop & budget_spent
    winner = np.select([rollback, stop, budget_end & budget_promotes, budget_end], [CHAMPION, leader, best_challenger, CHAMPION], -1)
    action = np.select(
        [rollback, stop | budget_end],
        [Action.ROLLBACK, np.where(winner == CHAMPION, Action.KEEP_CHAMPION, Action.PROMOTE)],
        Action.CONTINUE,
    )
    rule = np.select([rollback, stop, budget_end], [Rule.GUARDRAIL, Rule.STOP_RULE, Rule.BUDGET], Rule.NONE)
    ended = winner >= 0
    final_weights = np.zeros((runs, arms))
    final_weights[rows[ended], winner[ended]] = 1.0
    weights = np.where(ended[:, None], final_weights, allocate(p_best, still, params))
    return Evaluation(p_best, loss, below, dropped, still, action, rule, winner, weights)
