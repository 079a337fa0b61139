"""Helpers for the rollout tests: a fixed clock and one-call rounds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from include.rollout import ExperimentState, Feedback, RoundRecord, step

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def feedback(
    state: ExperimentState,
    served: dict[str, int] | None = None,
    successes: dict[str, int] | None = None,
    failures: dict[str, int] | None = None,
) -> Feedback:
    """The next delta after the state's cursor (cursors are event counts here)."""
    since = state.cursor if state.cursor is not None else 0
    moved = sum((served or {}).values()) + sum((successes or {}).values()) + sum((failures or {}).values())
    return Feedback(since=state.cursor, until=since + max(moved, 1), served=served or {}, successes=successes or {}, failures=failures or {})


def advance(
    state: ExperimentState,
    served: dict[str, int] | None = None,
    successes: dict[str, int] | None = None,
    failures: dict[str, int] | None = None,
    hours: float = 0.0,
) -> tuple[ExperimentState, RoundRecord]:
    """Apply one round of feedback ``hours`` after the start."""
    return step(state, feedback(state, served, successes, failures), START + timedelta(hours=hours))


def rewarded_round(state: ExperimentState, counts: dict[str, tuple[int, int]], hours: float = 0.0) -> tuple[ExperimentState, RoundRecord]:
    """A round where each arm served ``successes + failures`` requests and all their rewards arrived."""
    return advance(
        state,
        served={arm: s + f for arm, (s, f) in counts.items()},
        successes={arm: s for arm, (s, _) in counts.items()},
        failures={arm: f for arm, (_, f) in counts.items()},
        hours=hours,
    )
