"""From the endpoint's feedback store to rounds: a retried round counts nothing twice, late rewards count once."""

from __future__ import annotations

import datetime as dt
from contextlib import closing
from pathlib import Path

import pytest

from include.rollout import PolicyParams, create_experiment, step
from include.rollout.feedback import log_position, parse_cursor, read_delta
from include.serving.feedback import FeedbackStore, ServedPrediction

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {arm: n for arm, n in counts.items() if n}


def serve(store: FeedbackStore, variant: str, count: int, generation: int, start: int) -> list[str]:
    ids = [f"{variant}-{start + i}" for i in range(count)]
    store.record_predictions([
        ServedPrediction(inference_id, f"req-{inference_id}", variant, variant[1:], generation, NOW.isoformat(), "positive")
        for inference_id in ids
    ])
    return ids


def test_a_retried_round_reads_nothing_twice_and_late_rewards_count_once(tmp_path: Path) -> None:
    with closing(FeedbackStore(tmp_path / "feedback.db")) as store:
        serve(store, "v1", 5, generation=1, start=0)  # before the experiment: never counted
        start = log_position(store)
        experiment = create_experiment("v1", ["v2"], PolicyParams(), seed=1, now=NOW, cursor=start)
        first_v1 = serve(store, "v1", 30, generation=2, start=100)
        first_v2 = serve(store, "v2", 10, generation=2, start=100)
        store.record_rewards([(i, 1) for i in first_v1[:20] + first_v2[:7]] + [(i, 0) for i in first_v2[7:]])

        delta = read_delta(store, experiment.cursor, ["v1", "v2"], weights_generation=2)
        assert (delta.feedback.served, delta.served_total) == ({"v1": 30, "v2": 10}, 40)
        assert (nonzero(delta.feedback.successes), nonzero(delta.feedback.failures)) == ({"v1": 20, "v2": 7}, {"v2": 3})
        committed, _ = step(experiment, delta.feedback, NOW)

        # The task dies here (after the commit) and its retry reads from the committed cursor: nothing new.
        retried = read_delta(store, committed.cursor, ["v1", "v2"], weights_generation=2)
        assert (retried.served_total, retried.feedback.successes, retried.feedback.failures) == (0, {}, {})

        # Round 2: new traffic under generation 3, late rewards for round 1's predictions, a stray variant.
        serve(store, "v2", 8, generation=3, start=200)
        serve(store, "v9", 2, generation=3, start=200)
        store.record_rewards([(i, 1) for i in first_v1[20:]])
        second = read_delta(store, committed.cursor, ["v1", "v2"], weights_generation=3)
        assert second.feedback.served == {"v2": 8} and nonzero(second.feedback.successes) == {"v1": 10}
        assert second.feedback.srm_served == {"v2": 8, "v9": 2}  # a stray variant shows as a mismatch
        assert second.foreign == {"v9 served": 2}
        after, _ = step(committed, second.feedback, NOW)
        v1 = after.arm("v1")
        assert (v1.served, v1.successes, v1.failures) == (30, 30, 0)  # every reward exactly once


def test_a_cursor_it_did_not_write_is_refused() -> None:
    assert parse_cursor(None) == (0, 0)
    assert parse_cursor("rewards=3;served=9") == (3, 9)
    with pytest.raises(ValueError, match="is not 'rewards=<n>;served=<n>'"):
        parse_cursor("42")
