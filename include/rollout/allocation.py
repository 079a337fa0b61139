"""Traffic weights: the policy's allocation from P(best), the exploration floor, and admitting a new arm.

Arrays are ``(runs, arms)`` as in :mod:`include.rollout.posterior`; arms not live get weight 0.
"""

from __future__ import annotations

import numpy as np

from include.rollout.params import FIXED_SPLIT, THOMPSON, TOP_TWO_THOMPSON, PolicyParams

# Weights are sums of Monte Carlo shares: an arm within this of the floor counts as at the floor.
TOLERANCE = 1e-12


def top_two_allocation(p_best: np.ndarray, live: np.ndarray, beta: float) -> np.ndarray:
    """Top-two Thompson sampling's probability of serving each arm (Russo 2016), given P(best).

    Per request: with probability ``beta`` serve the arm whose posterior sample is highest (arm i with
    probability p_i), otherwise resample until another arm j != i leads and serve j, which happens
    with probability p_j / (1 - p_i). When no draw had another arm leading (p_i == 1) that
    conditional is undefined; the other live arms then share it equally.
    """
    second = np.zeros_like(p_best)
    arms = p_best.shape[1]
    for first in range(arms):
        others = live.copy()
        others[:, first] = False
        rest = 1.0 - p_best[:, first : first + 1]
        count = np.maximum(others.sum(axis=1, keepdims=True), 1)
        conditional = np.where(rest > TOLERANCE, p_best / np.where(rest > TOLERANCE, rest, 1.0), 1.0 / count)
        second += p_best[:, first : first + 1] * np.where(others, conditional, 0.0)
    return beta * p_best + (1.0 - beta) * second


def equal_split(live: np.ndarray) -> np.ndarray:
    """The same share for every live arm."""
    return live / np.maximum(live.sum(axis=1, keepdims=True), 1)


def apply_floor(weights: np.ndarray, live: np.ndarray, floor: float) -> np.ndarray:
    """Raise every live arm to at least ``floor`` and scale the others down so the weights sum to 1.

    Scaling down can push another arm under the floor, so this repeats (at most once per arm).
    :raises ValueError: if the live arms cannot all get the floor.
    """
    if np.any(live.sum(axis=1) * floor > 1.0 + TOLERANCE):
        raise ValueError(f"{int(live.sum(axis=1).max())} live arms cannot each get the minimum weight {floor}")
    weights = np.where(live, weights, 0.0)
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), TOLERANCE)
    floored = np.zeros_like(live)
    for _ in range(live.shape[1]):
        floored |= live & (weights < floor - TOLERANCE)
        free = live & ~floored
        free_mass = np.where(free, weights, 0.0).sum(axis=1, keepdims=True)
        target = 1.0 - floor * floored.sum(axis=1, keepdims=True)
        scale = np.where(free_mass > 0, target / np.where(free_mass > 0, free_mass, 1.0), 0.0)
        weights = np.where(floored, floor, np.where(free, weights * scale, 0.0))
    return weights


def allocate(p_best: np.ndarray, live: np.ndarray, params: PolicyParams) -> np.ndarray:
    """Next round's weights under ``params.policy``, floored at ``params.min_weight``."""
    if params.policy == THOMPSON:
        weights = p_best
    elif params.policy == TOP_TWO_THOMPSON:
        weights = top_two_allocation(p_best, live, params.top_two_beta)
    elif params.policy == FIXED_SPLIT:
        weights = equal_split(live)
    else:
        raise ValueError(f"unknown policy {params.policy!r}")
    return apply_floor(weights, live, params.min_weight)


def admit(weights: np.ndarray, live: np.ndarray, new: np.ndarray, floor: float) -> np.ndarray:
    """Weights after arms ``new`` join: each starts at ``floor``, the others keep their proportions.

    ``live`` includes the new arms.
    """
    incoming = floor * new.sum(axis=1, keepdims=True)
    kept = np.where(live & ~new, weights, 0.0)
    kept = kept / np.maximum(kept.sum(axis=1, keepdims=True), TOLERANCE) * (1.0 - incoming)
    return apply_floor(np.where(new, floor, kept), live, floor)
