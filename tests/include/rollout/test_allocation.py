"""Weights: the exploration floor, top-two Thompson sampling's allocation, admitting an arm."""

from __future__ import annotations

import numpy as np
import pytest

from include.rollout.allocation import admit, allocate, apply_floor, top_two_allocation
from include.rollout.params import PolicyParams


def test_floor_keeps_every_live_arm_at_or_above_it_and_sums_to_one() -> None:
    weights = np.array([[0.97, 0.02, 0.01, 0.0], [0.5, 0.5, 0.0, 0.0], [0.999, 0.001, 0.0, 0.0]])
    live = np.array([[True, True, True, False], [True, True, False, False], [True, True, True, True]])
    floored = apply_floor(weights, live, 0.05)
    assert floored.sum(axis=1) == pytest.approx([1.0, 1.0, 1.0])
    assert np.all(floored[live] >= 0.05 - 1e-12)
    assert floored[0, 3] == 0.0
    assert floored[0].tolist() == pytest.approx([0.9, 0.05, 0.05, 0.0])
    assert floored[1].tolist() == pytest.approx([0.5, 0.5, 0.0, 0.0])


def test_floor_that_the_arms_cannot_all_get_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot each get the minimum weight"):
        apply_floor(np.array([[0.5, 0.3, 0.2]]), np.array([[True, True, True]]), 0.4)


def test_top_two_with_two_arms_and_beta_half_is_an_even_split() -> None:
    p_best = np.array([[0.97, 0.03], [0.5, 0.5], [1.0, 0.0]])
    allocation = top_two_allocation(p_best, np.ones((3, 2), dtype=bool), 0.5)
    assert allocation == pytest.approx(np.full((3, 2), 0.5))


def test_top_two_matches_the_per_request_procedure() -> None:
    """With prob beta serve the first leader, else redraw leaders until another arm leads (Russo 2016)."""
    p_best = np.array([0.6, 0.3, 0.1])
    beta, requests = 0.5, 200_000
    rng = np.random.default_rng(3)
    first = rng.choice(3, size=requests, p=p_best)
    served = first.copy()
    redraw = rng.random(requests) >= beta
    second = rng.choice(3, size=requests, p=p_best)
    while np.any(pending := redraw & (second == first)):
        second[pending] = rng.choice(3, size=int(pending.sum()), p=p_best)
    served[redraw] = second[redraw]
    empirical = np.bincount(served, minlength=3) / requests
    allocation = top_two_allocation(p_best[None, :], np.ones((1, 3), dtype=bool), beta)[0]
    assert allocation.sum() == pytest.approx(1.0)
    assert allocation == pytest.approx(empirical, abs=0.005)


def test_policies_allocate_and_floor() -> None:
    p_best = np.array([[0.9, 0.1]])
    live = np.ones((1, 2), dtype=bool)
    assert allocate(p_best, live, PolicyParams(min_weight=0.2))[0].tolist() == pytest.approx([0.8, 0.2])
    assert allocate(p_best, live, PolicyParams(policy="ab"))[0].tolist() == pytest.approx([0.5, 0.5])
    assert allocate(p_best, live, PolicyParams(policy="top-two-ts"))[0].tolist() == pytest.approx([0.5, 0.5])


def test_an_admitted_arm_gets_the_floor_and_the_others_keep_their_proportions() -> None:
    live = np.array([[True, True, True]])
    new = np.array([[False, False, True]])
    weights = admit(np.array([[0.6, 0.4, 0.0]]), live, new, 0.05)[0]
    assert weights.tolist() == pytest.approx([0.57, 0.38, 0.05])
