"""The simulator on small scenarios: the figures it reports and its command line."""

from __future__ import annotations

import json

import pytest

from include.rollout.params import PolicyParams
from include.rollout.simulate import Scenario, main, simulate

KEYS = {
    "regret_thompson_mean",
    "regret_ab_mean",
    "regret_ratio",
    "wrong_winner_rate",
    "median_decision_requests",
    "rollback_rate",
    "lai_robbins_bound",
}


def test_a_broken_challenger_is_rolled_back_in_every_run() -> None:
    result = simulate(Scenario((0.88, 0.50), requests=3000, runs=40), PolicyParams())
    assert result["rollback_rate"] == 1.0 and result["wrong_winner_rate"] == 0.0
    assert result["median_decision_requests"] <= 600
    assert result["regret_ab_mean"] == pytest.approx(1500 * 0.38)


def test_a_better_challenger_wins_and_beats_the_even_split() -> None:
    result = simulate(Scenario((0.80, 0.90), requests=4000, runs=40, seed=3), PolicyParams())
    assert result["winner_rates"]["1"] >= 0.95
    assert result["regret_ratio"] < 0.5
    assert result["regret_thompson_mean"] > 0


def test_the_same_seed_gives_the_same_figures() -> None:
    scenario = Scenario((0.85, 0.88), requests=2000, runs=20, reward_delay=300, seed=9)
    first, second = simulate(scenario, PolicyParams()), simulate(scenario, PolicyParams())
    first.pop("seconds"), second.pop("seconds")
    assert first == second


def test_an_arm_added_mid_run_joins_the_undecided_runs() -> None:
    result = simulate(Scenario((0.85, 0.86), requests=3000, runs=30, added_arm=(600, 0.95)), PolicyParams())
    assert result["added_arm_joined_rate"] > 0.5
    assert result["winner_rates"]["2"] > 0.3


def test_the_command_line_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--arms", "0.85,0.88", "--requests", "1000", "--runs", "10", "--round-size", "100", "--policy", "top-two-ts",
          "--add-arm-at", "400:0.9", "--reward-delay", "50", "--seed", "2"])
    result = json.loads(capsys.readouterr().out)
    assert KEYS <= set(result)
    assert result["policy"] == "top-two-ts" and result["scenario"]["add_arm_at"] == [400, 0.9]


def test_bad_scenarios_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--arms", "0.85"])
    assert "need at least two arm rates" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--arms", "0.85,0.88", "--add-arm-at", "x"])
    assert "--add-arm-at N:P" in capsys.readouterr().err
