"""Posterior summaries against closed forms for two Beta arms, within Monte Carlo error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import betainc, betaln

from include.rollout.posterior import (
    draw_rates,
    expected_loss,
    posterior_parameters,
    probability_below_champion,
    probability_best,
)

DRAWS = 40_000


def exact_p_b_beats_a(alpha_a: float, beta_a: float, alpha_b: int, beta_b: float) -> float:
    """P(p_B > p_A) for independent Beta posteriors, integer alpha_b (the sum formula, Evan Miller 2015)."""
    return sum(
        math.exp(betaln(alpha_a + i, beta_a + beta_b) - math.log(beta_b + i) - betaln(1 + i, beta_b) - betaln(alpha_a, beta_a))
        for i in range(alpha_b)
    )


def beta_pdf(x: float, a: float, b: float) -> float:
    return math.exp((a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - betaln(a, b)) if 0 < x < 1 else 0.0


def samples_of(a: tuple[float, float], b: tuple[float, float], seed: int = 7) -> np.ndarray:
    return draw_rates(np.array([[a[0], b[0]]]), np.array([[a[1], b[1]]]), DRAWS, np.random.default_rng(seed))


def test_posterior_update_adds_rewards_to_the_prior() -> None:
    alpha, beta = posterior_parameters(np.array([[3, 40]]), np.array([[7, 2]]), 1.0, 2.0)
    assert alpha.tolist() == [[4.0, 41.0]]
    assert beta.tolist() == [[9.0, 4.0]]


@pytest.mark.parametrize(
    ("a", "b"),
    [((1, 1), (1, 1)), ((3, 7), (2, 9)), ((50, 10), (60, 8)), ((256, 46), (281, 40)), ((880, 120), (12, 3))],
)
def test_probability_best_matches_the_closed_form(a: tuple[int, int], b: tuple[int, int]) -> None:
    exact = exact_p_b_beats_a(a[0], a[1], b[0], b[1])
    estimate = probability_best(samples_of(a, b), np.array([[True, True]]))[0]
    error = math.sqrt(exact * (1 - exact) / DRAWS)
    assert estimate.sum() == pytest.approx(1.0)
    assert abs(estimate[1] - exact) <= 4 * error + 1e-4


def test_the_sum_formula_agrees_with_numerical_integration() -> None:
    integral, _ = quad(lambda x: beta_pdf(x, 50, 10) * (1 - betainc(60, 8, x)), 0, 1)
    assert exact_p_b_beats_a(50, 10, 60, 8) == pytest.approx(integral, abs=1e-9)


def test_expected_loss_matches_numerical_integration() -> None:
    # E[(p_B - p_A)+] = integral over t of F_A(t) (1 - F_B(t)): the loss of choosing A.
    a, b = (50, 10), (60, 8)
    exact_loss_a, _ = quad(lambda t: betainc(*a, t) * (1 - betainc(*b, t)), 0, 1)
    exact_loss_b, _ = quad(lambda t: betainc(*b, t) * (1 - betainc(*a, t)), 0, 1)
    samples = samples_of(a, b)
    loss = expected_loss(samples, np.array([[True, True]]))[0]
    spread = (samples[0, 1] - samples[0, 0]).std() / math.sqrt(DRAWS)
    assert loss[0] == pytest.approx(exact_loss_a, abs=4 * spread)
    assert loss[1] == pytest.approx(exact_loss_b, abs=4 * spread)


def test_guardrail_probability_matches_numerical_integration() -> None:
    champion, challenger, margin = (880, 120), (30, 12), 0.02
    exact, _ = quad(lambda x: beta_pdf(x, *champion) * betainc(*challenger, max(x - margin, 0.0)), 0, 1, points=[0.88])
    estimate = probability_below_champion(samples_of(champion, challenger), margin)[0, 1]
    assert estimate == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / DRAWS) + 1e-4)


def test_arms_not_live_are_never_best_and_have_no_loss() -> None:
    samples = draw_rates(np.array([[5.0, 500.0, 5.0]]), np.array([[5.0, 5.0, 5.0]]), 10_000, np.random.default_rng(1))
    live = np.array([[True, False, True]])
    assert probability_best(samples, live)[0, 1] == 0.0
    assert probability_best(samples, live)[0].sum() == pytest.approx(1.0)
    assert np.isnan(expected_loss(samples, live)[0, 1])
