"""From the endpoint's feedback log to the policy's :class:`~include.rollout.state.Feedback` delta.

The endpoint keeps two logs with a cursor each (:class:`include.serving.feedback.FeedbackReader`):
served predictions (stamped with the variant and the weights generation that routed them) and rewards
(joined to the variant that served the prediction, however late they arrive). The experiment's cursor
holds both, as ``"rewards=<cursor>;served=<cursor>"``, so a round reads exactly what arrived after the
previous one: a retry that reads from the saved cursor again counts nothing twice.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from include.rollout.state import Cursor, Feedback
from include.serving.feedback import FeedbackReader

_CURSOR = re.compile(r"^rewards=(\d+);served=(\d+)$")


def feedback_cursor(rewards: int, served: int) -> str:
    """The experiment cursor for the two logs' cursors."""
    return f"rewards={rewards};served={served}"


def parse_cursor(cursor: Cursor | None) -> tuple[int, int]:
    """``(rewards, served)`` log cursors of an experiment cursor (``None``: the logs' start).

    :raises ValueError: for a cursor this module did not write.
    """
    if cursor is None:
        return 0, 0
    match = _CURSOR.match(str(cursor))
    if match is None:
        raise ValueError(f"feedback cursor {cursor!r} is not 'rewards=<n>;served=<n>'")
    return int(match.group(1)), int(match.group(2))


def log_position(reader: FeedbackReader) -> str:
    """The cursor at the logs' current end: an experiment started here counts only what comes after."""
    return feedback_cursor(reader.rewards_since(0).cursor, reader.served_since(0).cursor)


@dataclass(frozen=True)
class FeedbackDelta:
    """A round's feedback for the policy, and what did not belong to the experiment's arms.

    :param feedback: the delta for :func:`include.rollout.step`.
    :param served_total: predictions served in the delta by the experiment's arms.
    :param foreign: predictions and rewards of variants that are not arms (logged by the caller).
    """

    feedback: Feedback
    served_total: int
    foreign: dict[str, int]


def read_delta(reader: FeedbackReader, cursor: Cursor | None, arms: Iterable[str], weights_generation: int) -> FeedbackDelta:
    """Everything recorded after ``cursor``, per arm.

    ``served`` counts predictions (one per review), ``srm_served`` the requests routed under
    ``weights_generation`` (the weights of this round; any variant, so a stray one shows as a
    sample-ratio mismatch; the router picks a variant per request, not per review), rewards are
    successes and failures per serving variant.
    """
    arm_names = set(arms)
    rewards_cursor, served_cursor = parse_cursor(cursor)
    rewards = reader.rewards_since(rewards_cursor)
    served = reader.served_since(served_cursor)
    counts: dict[str, Counter[str]] = {"served": Counter(), "successes": Counter(), "failures": Counter()}
    srm_served: Counter[str] = Counter()
    foreign: Counter[str] = Counter()
    for count in served.counts:
        if count.weights_generation == weights_generation:
            srm_served[count.variant] += count.requests
        if count.variant in arm_names:
            counts["served"][count.variant] += count.predictions
        else:
            foreign[f"{count.variant} served"] += count.predictions
    for variant in rewards.variants:
        if variant.variant in arm_names:
            counts["successes"][variant.variant] += variant.successes
            counts["failures"][variant.variant] += variant.failures
        else:
            foreign[f"{variant.variant} rewards"] += variant.successes + variant.failures
    delta = Feedback(
        since=cursor,
        until=feedback_cursor(rewards.cursor, served.cursor),
        served=dict(counts["served"]),
        successes=dict(counts["successes"]),
        failures=dict(counts["failures"]),
        srm_served=dict(srm_served),
    )
    return FeedbackDelta(delta, sum(counts["served"].values()), dict(foreign))
