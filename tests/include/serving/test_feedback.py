"""The local feedback store: idempotent rewards, the cursor, served counts, and a reader in another process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from include.config import REPO_ROOT
from include.serving.feedback import FeedbackStore, RewardOutcome, ServedPrediction, check_reward


def served(inference_id: str, variant: str, generation: int, request_id: str | None = None) -> ServedPrediction:
    return ServedPrediction(inference_id, request_id or inference_id, variant, variant.removeprefix("v"), generation,
                            "2026-01-01T00:00:00+00:00", "positive")


def test_rewards_are_recorded_once_and_read_after_a_cursor(tmp_path: Path) -> None:
    with FeedbackStore(tmp_path / "feedback.db") as store:
        assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        store.record_predictions([served("a", "v1", 1), served("b", "v1", 1), served("c", "v2", 1)])
        outcomes = store.record_rewards([("a", 1), ("a", 1), ("a", 0), ("zzz", 1), ("c", 0)])
        assert outcomes == [RewardOutcome.RECORDED, RewardOutcome.DUPLICATE, RewardOutcome.CONFLICT,
                            RewardOutcome.UNKNOWN, RewardOutcome.RECORDED]
        first = store.rewards_since(0)
        assert [(v.variant, v.model_version, v.successes, v.failures) for v in first.variants] == [
            ("v1", "1", 1, 0), ("v2", "2", 0, 1)]
        assert store.rewards_since(first.cursor).variants == ()
        assert store.rewards_since(first.cursor).cursor == first.cursor
        store.record_predictions([served("d", "v2", 2)])
        store.record_rewards([("b", 0), ("d", 1)])  # b was served a generation ago: it counts now, for v1
        later = store.rewards_since(first.cursor)
        assert [(v.variant, v.successes, v.failures) for v in later.variants] == [("v1", 0, 1), ("v2", 1, 0)]
        assert later.cursor > first.cursor


def test_served_counts_after_a_cursor_per_generation_count_requests_and_predictions(tmp_path: Path) -> None:
    with FeedbackStore(tmp_path / "feedback.db") as store:
        store.record_predictions([served("a", "v1", 1, "r1"), served("b", "v1", 1, "r1"), served("c", "v2", 1)])
        first = store.served_since(0)
        assert [(c.weights_generation, c.variant, c.requests, c.predictions) for c in first.counts] == [
            (1, "v1", 1, 2), (1, "v2", 1, 1)]
        store.record_predictions([served("d", "v2", 1), served("e", "v2", 2)])  # straddles a weights change
        later = store.served_since(first.cursor)
        assert [(c.weights_generation, c.variant, c.requests) for c in later.counts] == [(1, "v2", 1), (2, "v2", 1)]
        assert store.served_since(later.cursor) == type(later)(later.cursor, ())


READER = """
import dataclasses, json, sys
from pathlib import Path
from include.serving.feedback import FeedbackStore
with FeedbackStore(Path(sys.argv[1])) as store:
    print(json.dumps(dataclasses.asdict(store.rewards_since(0))))
"""


def test_another_process_reads_while_the_writer_keeps_its_connection(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    with FeedbackStore(path) as writer:
        writer.record_predictions([served("a", "v1", 1)])
        writer.record_rewards([("a", 1)])
        result = subprocess.run([sys.executable, "-c", READER, str(path)], capture_output=True, text=True, check=True,
                                cwd=REPO_ROOT)
        assert json.loads(result.stdout)["variants"] == [{"variant": "v1", "model_version": "1", "successes": 1, "failures": 0}]


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (0, 0), (True, 1), (0.0, 0), (1.0, 1)])
def test_rewards_are_zero_or_one(value: object, expected: int) -> None:
    assert check_reward(value) == expected


@pytest.mark.parametrize("value", [0.5, 2, -1, "1", None, float("nan")])
def test_other_rewards_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="reward: must be 0 or 1"):
        check_reward(value)
