"""Sample-ratio-mismatch check: a broken split is flagged, a matching one is not."""

from __future__ import annotations

import numpy as np

from include.rollout.srm import check_sample_ratio, srm_p_values

from .conftest import advance
from .test_experiment import experiment


def test_a_split_that_ignores_the_weights_is_a_mismatch() -> None:
    check = check_sample_ratio({"v1": 100, "v2": 100}, {"v1": 0.95, "v2": 0.05}, 0.001)
    assert check.checked and check.mismatch and check.p_value < 1e-6
    assert check.note.startswith("sample-ratio mismatch: chi-square p=")


def test_a_split_that_follows_the_weights_is_not() -> None:
    check = check_sample_ratio({"v1": 186, "v2": 14}, {"v1": 0.95, "v2": 0.05}, 0.001)
    assert check.checked and not check.mismatch and check.p_value > 0.01


def test_requests_for_an_arm_at_weight_zero_are_a_mismatch() -> None:
    check = check_sample_ratio({"v1": 199, "v2": 1}, {"v1": 1.0, "v2": 0.0}, 0.001)
    assert check.checked and check.mismatch and check.p_value == 0.0


def test_rounds_too_small_for_the_test_are_not_tested() -> None:
    assert check_sample_ratio({"v1": 40, "v2": 0}, {"v1": 0.95, "v2": 0.05}, 0.001).note.startswith("not tested")
    assert check_sample_ratio({}, {"v1": 0.5, "v2": 0.5}, 0.001).note == "no requests served"


def test_false_alarms_match_the_threshold() -> None:
    rng = np.random.default_rng(5)
    weights = np.tile([0.7, 0.2, 0.1], (20_000, 1))
    served = rng.multinomial(200, [0.7, 0.2, 0.1], size=20_000)
    _, p_value, testable = srm_p_values(served, weights)
    assert testable.all()
    assert 0.02 < np.mean(p_value < 0.05) < 0.08


def test_each_round_is_checked_against_the_weights_set_for_it() -> None:
    state, record = advance(experiment(), served={"v1": 100, "v2": 100})
    assert record.srm.mismatch
    state, record = advance(state, served={"v1": round(200 * state.weights["v1"]), "v2": round(200 * state.weights["v2"])})
    assert record.srm.checked and not record.srm.mismatch
