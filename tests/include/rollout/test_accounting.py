"""Regret and reward accounting, the run summary, the Lai-Robbins bound, and the PNG plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from include.rollout import add_arm, series, summary, write_plots
from include.rollout.accounting import lai_robbins_bound, pseudo_regret, split_regret

from .conftest import rewarded_round
from .test_experiment import experiment


def test_pseudo_regret_counts_requests_times_the_gap_to_the_best_present_arm() -> None:
    served = np.array([[100, 0, 0], [30, 70, 0], [10, 10, 80]])
    present = np.array([[True, True, False], [True, True, False], [True, True, True]])
    rates = np.array([0.85, 0.88, 0.90])
    assert pseudo_regret(served, rates, present) == pytest.approx([3.0, 0.9, 0.7])
    assert split_regret(np.array([100, 100, 300]), rates, present) == pytest.approx([1.5, 1.5, 0.07 * 100])


def test_lai_robbins_bound_for_two_arms() -> None:
    kl = 0.85 * math.log(0.85 / 0.88) + 0.15 * math.log(0.15 / 0.12)
    assert lai_robbins_bound(np.array([0.85, 0.88]), 10_000) == pytest.approx(0.03 / kl * math.log(10_000))
    assert lai_robbins_bound(np.array([0.5, 0.5]), 10_000) == 0.0
    assert lai_robbins_bound(np.array([0.0, 0.9]), 100) == pytest.approx(0.9 / math.log(10) * math.log(100))


def test_series_and_summary_of_a_decided_experiment() -> None:
    state, _ = rewarded_round(experiment(), {"v1": (160, 30), "v2": (9, 1)})
    state = add_arm(state, "v3")
    state, _ = rewarded_round(state, {"v1": (80, 20), "v2": (45, 5), "v3": (9, 1)})
    state, _ = rewarded_round(state, {"v1": (80, 20), "v2": (270, 30), "v3": (1, 9)})
    rates = {"v1": 0.8, "v2": 0.9, "v3": 0.5}
    figures = series(state, rates)
    assert figures.requests == [200, 360, 770]
    assert figures.cumulative_reward == [169, 303, 654]
    assert figures.weights["v3"][:2] == [0.0, pytest.approx(0.05)]
    # Round 0: 190 at 0.8 and 10 at 0.9; v3 was not there yet; round 1 on: three arms.
    assert figures.cumulative_regret[0] == pytest.approx(19.0)
    assert figures.split_regret[0] == pytest.approx(10.0)
    assert figures.cumulative_regret[-1] == pytest.approx(19.0 + 10 + 4 + 10 + 4)
    assert figures.split_regret[-1] == pytest.approx(10 + 160 * 0.5 / 3 + 410 * 0.5 / 3)
    report = summary(state, rates)
    decision = state.decision
    assert report["status"] == decision.action and report["winner"] == decision.winner == "v2"
    assert report["requests_to_decision"] == 770 and report["rounds"] == 3
    assert report["regret_ratio"] == pytest.approx(report["regret"] / report["split_regret"], abs=1e-3)
    assert report["arms"]["v3"]["joined_round"] == 1
    assert summary(state)["rates_source"] == "final posterior means"


def test_write_plots_writes_three_pngs(tmp_path: Path) -> None:
    state, _ = rewarded_round(experiment(), {"v1": (160, 30), "v2": (9, 1)})
    state, _ = rewarded_round(state, {"v1": (80, 20), "v2": (90, 10)})
    written = write_plots(series(state), tmp_path / "plots")
    assert [path.name for path in written] == ["weights.png", "reward.png", "regret.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(path).shape[:2] == (400, 700)
    with pytest.raises(ValueError, match="no round to plot"):
        write_plots(series(experiment()), tmp_path / "empty")
