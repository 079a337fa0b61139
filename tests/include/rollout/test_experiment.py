"""The experiment API: stop rule, guardrail, arms joining and leaving, budget, late rewards, idempotency, JSON."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from include.rollout import (
    ExperimentEnded,
    ExperimentState,
    Feedback,
    FeedbackCursorError,
    PolicyParams,
    add_arm,
    create_experiment,
    remove_arm,
    step,
)

from .conftest import START, advance, feedback, rewarded_round


def experiment(*challengers: str, **params: object) -> ExperimentState:
    """v1 against ``challengers`` (v2 by default), at a 5 % floor unless ``params`` say otherwise."""
    return create_experiment("v1", list(challengers or ["v2"]), PolicyParams(**{"min_weight": 0.05, **params}), seed=11, now=START)


def test_a_new_experiment_starts_the_challengers_at_the_minimum_weight() -> None:
    state = experiment("v2", "v3", min_weight=0.1)
    assert state.weights == pytest.approx({"v1": 0.8, "v2": 0.1, "v3": 0.1})
    assert [arm.name for arm in state.arms] == ["v1", "v2", "v3"]
    assert all((arm.served, arm.successes, arm.failures, arm.prior_alpha) == (0, 0, 0, 1.0) for arm in state.arms)


@pytest.mark.parametrize(
    ("champion", "challengers", "message"),
    [("v1", [], "at least one challenger"), ("v1", ["v1"], "unique"), ("", ["v2"], "non-empty")],
)
def test_bad_arm_names_are_rejected(champion: str, challengers: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_experiment(champion, challengers, seed=1, now=START)


def test_rewards_update_the_counts_and_the_posterior() -> None:
    state, record = rewarded_round(experiment(), {"v1": (160, 30), "v2": (9, 1)})
    assert (state.arm("v1").served, state.arm("v1").successes, state.arm("v1").failures) == (190, 160, 30)
    assert state.arm("v2").posterior_mean == pytest.approx(10 / 12)
    assert record.weights == pytest.approx({"v1": 0.95, "v2": 0.05})
    assert record.next_weights == state.weights
    assert sum(record.next_weights.values()) == pytest.approx(1.0)
    assert record.decision.action == "continue"


def test_stop_rule_promotes_a_clearly_better_challenger_once_every_arm_has_the_minimum() -> None:
    state, record = rewarded_round(experiment(), {"v1": (254, 45), "v2": (290, 10)})
    assert record.decision.action == "continue"
    assert record.decision.reason == "continue: v1 has 299 rewarded requests of the 300 required"
    assert record.p_best["v2"] > 0.999

    state, record = rewarded_round(state, {"v1": (1, 0)})
    decision = record.decision
    assert (decision.action, decision.rule, decision.winner) == ("promote", "stop_rule", "v2")
    assert decision.reason.startswith("promote v2: v2 has P(best) 1.0000 >= 0.95 and expected loss 0.00000 < 0.002")
    assert decision.numbers["rewarded"] == {"v1": 300, "v2": 300}
    assert record.next_weights == {"v1": 0.0, "v2": 1.0}
    assert state.decision == decision


def test_stop_rule_keeps_the_champion_when_it_is_confidently_best() -> None:
    # 0.900 over 10,000 vs 0.885 over 3,000: within the guardrail's margin, but the champion is best.
    state, record = rewarded_round(experiment(), {"v1": (9000, 1000), "v2": (2655, 345)})
    decision = record.decision
    assert (decision.action, decision.rule, decision.winner) == ("keep_champion", "stop_rule", "v1")
    assert record.p_below_champion["v2"] < 0.99
    assert decision.numbers["expected_loss"] < 0.002


def test_stop_rule_waits_while_the_arms_are_close() -> None:
    state, record = rewarded_round(experiment(), {"v1": (255, 45), "v2": (258, 42)})
    assert record.decision.action == "continue"
    assert record.decision.reason.startswith("continue: leader v2 has P(best) 0.")


def test_guardrail_rolls_back_a_broken_challenger_in_the_first_round() -> None:
    state, record = rewarded_round(experiment(), {"v1": (166, 24), "v2": (4, 6)})
    decision = record.decision
    assert (decision.action, decision.rule, decision.winner, decision.dropped) == ("rollback", "guardrail", "v1", ("v2",))
    assert decision.reason.startswith("rollback to champion v1: every challenger failed the guardrail: P(v2 < v1 - 0.02) = ")
    assert decision.numbers["p_below_champion"]["v2"] >= 0.99
    assert state.arm("v2").status == "dropped"
    assert record.next_weights == {"v1": 1.0, "v2": 0.0}


def test_guardrail_drops_one_failing_challenger_and_the_others_continue() -> None:
    state, record = rewarded_round(experiment("v2", "v3"), {"v1": (153, 27), "v2": (2, 8), "v3": (9, 1)})
    decision = record.decision
    assert (decision.action, decision.dropped) == ("continue", ("v2",))
    assert "dropped v2 by the guardrail" in decision.reason
    assert state.arm("v2").status == "dropped" and state.arm("v2").left_round == 0
    assert state.live_arms == ("v1", "v3")
    assert record.next_weights["v2"] == 0.0 and record.p_best["v2"] == 0.0
    assert record.next_weights["v1"] + record.next_weights["v3"] == pytest.approx(1.0)

    # A late reward for the dropped arm is still recorded; only the last live challenger failing rolls back.
    state, record = rewarded_round(state, {"v1": (150, 30), "v2": (1, 0), "v3": (1, 9)})
    assert state.arm("v2").successes == 3
    assert (record.decision.action, record.decision.dropped) == ("rollback", ("v3",))


def test_an_arm_joins_with_a_fresh_prior_at_the_minimum_weight() -> None:
    state, _ = rewarded_round(experiment(), {"v1": (160, 30), "v2": (9, 1)})
    before = state.weights
    joined = add_arm(state, "v3")
    assert joined.arm("v3").joined_round == 1
    assert (joined.arm("v3").served, joined.arm("v3").prior_alpha, joined.arm("v3").prior_beta) == (0, 1.0, 1.0)
    assert joined.weights["v3"] == pytest.approx(0.05)
    assert joined.weights["v1"] / joined.weights["v2"] == pytest.approx(before["v1"] / before["v2"])
    assert sum(joined.weights.values()) == pytest.approx(1.0)
    assert joined.arms[:2] == state.arms and joined.rounds == state.rounds
    assert add_arm(joined, "v3") is joined

    served = {arm: round(1000 * weight) for arm, weight in joined.weights.items()}
    after, record = advance(joined, served=served, successes={"v3": 5})
    assert after.arm("v3").served == served["v3"] and after.arm("v3").successes == 5
    assert record.weights == joined.weights
    assert record.srm.checked and not record.srm.mismatch


def test_removing_an_arm_gives_its_weight_to_the_others() -> None:
    state = remove_arm(experiment("v2", "v3"), "v3", "model withdrawn")
    assert state.arm("v3").status == "removed" and state.arm("v3").status_reason == "model withdrawn"
    assert state.weights["v3"] == 0.0 and sum(state.weights.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="last live challenger"):
        remove_arm(state, "v2", "no")
    with pytest.raises(ValueError, match="champion cannot be removed"):
        remove_arm(experiment("v2", "v3"), "v1", "no")
    with pytest.raises(ValueError, match="cannot rejoin"):
        add_arm(state, "v3")


def test_budget_end_keeps_the_champion_when_undecided() -> None:
    state = experiment(budget_requests=400)
    state, record = rewarded_round(state, {"v1": (160, 30), "v2": (9, 1)})
    assert record.decision.action == "continue"
    state, record = rewarded_round(state, {"v1": (100, 20), "v2": (70, 10)})
    decision = record.decision
    assert (decision.action, decision.rule, decision.winner) == ("keep_champion", "budget", "v1")
    assert decision.reason.startswith("budget spent (400 requests served of a budget of 400) undecided: keep champion v1")
    with pytest.raises(ExperimentEnded, match="ended in round 1"):
        rewarded_round(state, {"v1": (1, 0)})


def test_budget_end_promotes_a_challenger_that_is_confidently_best() -> None:
    # P(best) is clear but the stop rule still waits for 300 rewarded requests per arm.
    state = experiment(budget_hours=2.0)
    state, record = rewarded_round(state, {"v1": (80, 20), "v2": (98, 2)}, hours=1.0)
    assert record.decision.action == "continue"
    state, record = rewarded_round(state, {"v1": (1, 0)}, hours=2.5)
    decision = record.decision
    assert (decision.action, decision.rule, decision.winner) == ("promote", "budget", "v2")
    assert "2.50 h elapsed of a budget of 2 h" in decision.reason


def test_late_rewards_count_for_the_arm_that_served_them() -> None:
    state = experiment()
    state, record = advance(state, served={"v1": 380, "v2": 20})
    assert (state.arm("v2").served, state.arm("v2").rewarded) == (20, 0)
    assert record.decision.action == "continue"
    # Rewards of round 0's requests arrive with round 1's feedback; nothing more was served.
    state, record = advance(state, successes={"v1": 250, "v2": 18}, failures={"v1": 100, "v2": 2})
    assert (state.arm("v2").served, state.arm("v2").successes, state.arm("v2").failures) == (20, 18, 2)
    assert record.served == {"v1": 0, "v2": 0} and not record.srm.checked


def test_the_minimum_counts_rewarded_requests_not_served_ones() -> None:
    state, record = advance(
        experiment(), served={"v1": 400, "v2": 400}, successes={"v1": 160, "v2": 249}, failures={"v1": 100, "v2": 1}
    )
    assert record.p_best["v2"] > 0.999
    assert record.decision.action == "continue"
    assert record.decision.reason == "continue: v2 has 250 rewarded requests of the 300 required"


def test_reapplying_the_same_delta_is_a_no_op() -> None:
    state, _ = rewarded_round(experiment(), {"v1": (160, 30), "v2": (9, 1)})
    delta = feedback(state, served={"v1": 150, "v2": 50}, successes={"v1": 120, "v2": 45}, failures={"v1": 30, "v2": 5})
    once, record = step(state, delta, START)
    twice, again = step(once, delta, START)
    assert twice is once and again is record
    assert once.arm("v2").served == 60 and len(once.rounds) == 2

    changed = replace(delta, successes={"v1": 121, "v2": 45})
    with pytest.raises(FeedbackCursorError, match="already applied in round 1 with other counts"):
        step(once, changed, START)
    with pytest.raises(FeedbackCursorError, match="starts after cursor 5 but the state has consumed up to"):
        step(once, Feedback(since=5, until=999, served={"v1": 1}), START)


def test_an_empty_delta_makes_a_new_round_each_time() -> None:
    state, _ = rewarded_round(experiment(), {"v1": (160, 30), "v2": (9, 1)})
    empty = Feedback(since=state.cursor, until=state.cursor)
    once, _ = step(state, empty, START)
    twice, _ = step(once, empty, START)
    assert len(twice.rounds) == 3 and twice.arms == state.arms
    for counts in ({"served": {"v1": 1}}, {"failures": {"v2": 1}}):
        with pytest.raises(ValueError, match="must move the cursor"):
            step(state, Feedback(since=state.cursor, until=state.cursor, **counts), START)


@pytest.mark.parametrize(
    ("delta", "message"),
    [
        ({"served": {"v9": 1}}, "feedback served names unknown arm"),
        ({"successes": {"v1": -1}}, r"feedback successes\['v1'\] must be a non-negative integer"),
        ({"failures": {"v1": 1.5}}, r"feedback failures\['v1'\] must be a non-negative integer"),
    ],
)
def test_bad_feedback_names_the_field(delta: dict[str, dict[str, object]], message: str) -> None:
    state = experiment()
    with pytest.raises(ValueError, match=message):
        step(state, Feedback(since=None, until=1, **delta), START)


def test_times_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        create_experiment("v1", ["v2"], seed=1, now=datetime(2026, 1, 1))


def test_state_survives_a_json_round_trip_and_resumes_identically() -> None:
    state = experiment("v2", "v3", "v4", min_weight=0.02)
    state, _ = rewarded_round(state, {"v1": (160, 30), "v2": (2, 8), "v3": (9, 1), "v4": (8, 2)})
    state = remove_arm(add_arm(state, "v5"), "v4", "withdrawn")
    state, _ = advance(state, served={"v1": 100, "v3": 10, "v5": 5}, successes={"v1": 80, "v5": 4}, failures={"v1": 10})
    text = state.to_json()
    restored = ExperimentState.from_json(text)
    assert restored == state
    assert restored.to_json() == text
    delta = feedback(state, served={"v1": 150, "v3": 40, "v5": 10}, successes={"v1": 130, "v3": 38}, failures={"v1": 20, "v3": 2})
    assert step(restored, delta, START) == step(state, delta, START)


def test_a_state_of_another_schema_or_with_missing_fields_is_refused() -> None:
    data = experiment().to_dict()
    with pytest.raises(ValueError, match="schema_version 2 is not 1"):
        ExperimentState.from_dict({**data, "schema_version": 2})
    with pytest.raises(ValueError, match="missing or has a malformed field: 'weights'"):
        ExperimentState.from_dict({key: value for key, value in data.items() if key != "weights"})
    with pytest.raises(ValueError, match="unknown rollout parameter"):
        ExperimentState.from_dict({**data, "params": {**data["params"], "floor": 0.1}})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"policy": "ucb"}, "policy must be one of ts, top-two-ts, ab"),
        ({"draws": 500}, "draws must be an integer >= 10000"),
        ({"p_best_threshold": 1.5}, r"p_best_threshold must be in \(0.0, 1.0\]"),
        ({"min_weight": 0.6}, r"min_weight must be in \[0.0, 0.5\]"),
        ({"budget_requests": 0}, "budget_requests must be an integer >= 1"),
    ],
)
def test_bad_parameters_name_the_field(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PolicyParams(**params)


def test_the_sample_ratio_check_uses_the_requests_served_under_the_rounds_weights_when_given() -> None:
    state = experiment("v2", min_weight=0.1)
    # 1,000 requests at 90/10, plus 400 in flight on v2 from before the weights were set: all served, not all tested.
    served_now = {"v1": 900, "v2": 100}
    all_served = {"v1": 900, "v2": 500}
    skewed, record = step(state, replace(feedback(state, served=all_served), srm_served=served_now), START)
    assert not record.srm.mismatch and skewed.arm("v2").served == 500
    _, unexplained = step(state, feedback(state, served=all_served), START)
    assert unexplained.srm.mismatch
