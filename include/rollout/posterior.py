"""Beta-Bernoulli posteriors and the Monte Carlo summaries the policy decides on.

Every function works on a batch: arrays of shape ``(runs, arms)`` for posterior parameters and
``(runs, arms, draws)`` for samples, so one experiment (``runs == 1``) and a simulation of many
runs share the code. Arm 0 is the champion.
"""

from __future__ import annotations

import numpy as np

CHAMPION = 0


def posterior_parameters(
    successes: np.ndarray, failures: np.ndarray, prior_alpha: float | np.ndarray, prior_beta: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Beta posterior ``(alpha, beta)`` of each arm after its observed rewards (priors: one for all, or per arm)."""
    return prior_alpha + successes, prior_beta + failures


def draw_rates(alpha: np.ndarray, beta: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``draws`` samples of every arm's success rate from its Beta posterior: shape ``(runs, arms, draws)``."""
    runs, arms = alpha.shape
    return rng.beta(alpha[:, :, None], beta[:, :, None], size=(runs, arms, draws))


def _best_of_live(samples: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The samples with arms not live at -inf, and each draw's highest live sample ``(runs, 1, draws)``."""
    masked = np.where(live[:, :, None], samples, -np.inf)
    return masked, masked.max(axis=1, keepdims=True)


def probability_best(samples: np.ndarray, live: np.ndarray) -> np.ndarray:
    """P(arm has the highest rate among the live arms), the share of draws it leads; 0 for arms not live.

    Draws are continuous, so two arms tie with probability 0.
    """
    masked, best = _best_of_live(samples, live)
    return np.where(live, (masked == best).mean(axis=2), 0.0)


def expected_loss(samples: np.ndarray, live: np.ndarray) -> np.ndarray:
    """Posterior mean of ``max_j p_j - p_arm`` over the live arms: the rate given up by choosing the arm.

    NaN for arms not live.
    """
    _, best = _best_of_live(samples, live)
    return np.where(live, best.mean(axis=2) - samples.mean(axis=2), np.nan)


def probability_below_champion(samples: np.ndarray, margin: float) -> np.ndarray:
    """P(arm's rate < champion's rate - ``margin``) for every arm (the guardrail's probability)."""
    return (samples < samples[:, CHAMPION : CHAMPION + 1, :] - margin).mean(axis=2)
