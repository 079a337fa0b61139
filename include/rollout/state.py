"""The experiment's state: JSON-ready frozen dataclasses, persisted by the caller after every round.

Nothing here mutates: :mod:`include.rollout.experiment` builds a new state per round. Counts are kept
twice over on purpose: ``served`` (requests routed to the arm) and ``successes``/``failures``
(rewards recorded for requests the arm served, whenever they arrived). The posteriors use the
rewards; the stop rule's minimum counts rewarded requests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from include.rollout.params import PolicyParams
from include.rollout.srm import SrmCheck

SCHEMA_VERSION = 1
LIVE = "live"
DROPPED = "dropped"  # by the guardrail
REMOVED = "removed"  # by the caller (remove_arm)

# A position in the feedback log (an event id, a timestamp or an object key); compared for equality only.
Cursor = int | str


@dataclass(frozen=True)
class ArmState:
    """One variant: its prior, its cumulative counts, and when it joined and left."""

    name: str
    prior_alpha: float
    prior_beta: float
    joined_round: int
    served: int = 0
    successes: int = 0
    failures: int = 0
    status: str = LIVE
    left_round: int | None = None
    status_reason: str = ""

    @property
    def rewarded(self) -> int:
        """Requests whose reward has arrived."""
        return self.successes + self.failures

    @property
    def posterior_mean(self) -> float:
        """Posterior mean success rate."""
        alpha, beta = self.prior_alpha + self.successes, self.prior_beta + self.failures
        return alpha / (alpha + beta)

    def present_in(self, round_index: int) -> bool:
        """Whether the arm took part in a round (joined, and not removed before it; dropped arms count)."""
        gone = self.status == REMOVED and self.left_round is not None and round_index >= self.left_round
        return self.joined_round <= round_index and not gone


@dataclass(frozen=True)
class Feedback:
    """What happened since the last round, aggregated per arm by the caller.

    :param since: the cursor the delta starts after: the state's ``cursor`` when it was read.
    :param until: the cursor the delta ends at (inclusive); the state's cursor after applying it.
    :param served: requests served per arm since the last round, under the weights then set.
    :param successes: rewards of 1 recorded in the window, per arm that served the prediction,
        whenever that prediction was served (late rewards count here).
    :param failures: rewards of 0 recorded in the window, likewise.
    :param srm_served: the part of ``served`` routed under exactly the weights of this round, when the
        caller can tell (the endpoint stamps each prediction with its weights generation); the
        sample-ratio check then leaves out requests in flight while the weights changed.
        ``None``: all of ``served``.
    """

    since: Cursor | None
    until: Cursor
    served: Mapping[str, int] = field(default_factory=dict)
    successes: Mapping[str, int] = field(default_factory=dict)
    failures: Mapping[str, int] = field(default_factory=dict)
    srm_served: Mapping[str, int] | None = None


@dataclass(frozen=True)
class Decision:
    """What a round decided, why, and the numbers behind the reason.

    :param action: ``continue``, ``promote`` (``winner`` takes all traffic), ``rollback`` (every
        challenger failed the guardrail: all traffic back to the champion; page) or ``keep_champion``
        (the stop rule chose the champion, or the budget ran out without a confident challenger).
    :param rule: ``guardrail``, ``stop_rule`` or ``budget`` for a final decision, ``none`` while continuing.
    :param winner: the arm that takes all traffic once the experiment ended, else None.
    :param dropped: challengers the guardrail dropped this round (roll each back and page), also when
        the experiment continues with others.
    """

    action: str
    rule: str
    winner: str | None
    dropped: tuple[str, ...]
    reason: str
    numbers: Mapping[str, Any]

    @property
    def final(self) -> bool:
        """Whether the experiment ended with this decision."""
        return self.action != "continue"


@dataclass(frozen=True)
class RoundRecord:
    """One round: the feedback it consumed, what the posteriors said, and the decision."""

    index: int
    at: str
    since: Cursor | None
    until: Cursor
    weights: Mapping[str, float]  # in force while this round's requests were served
    served: Mapping[str, int]
    successes: Mapping[str, int]
    failures: Mapping[str, int]
    p_best: Mapping[str, float]
    expected_loss: Mapping[str, float | None]
    p_below_champion: Mapping[str, float | None]
    srm: SrmCheck
    decision: Decision
    next_weights: Mapping[str, float]


@dataclass(frozen=True)
class ExperimentState:
    """A whole experiment: arms (champion first), parameters, the weights now set, and every round."""

    champion: str
    arms: tuple[ArmState, ...]
    params: PolicyParams
    seed: int
    started_at: str
    cursor: Cursor | None
    weights: Mapping[str, float]
    rounds: tuple[RoundRecord, ...] = ()
    schema_version: int = SCHEMA_VERSION

    @property
    def decision(self) -> Decision | None:
        """The final decision once the experiment ended, else None."""
        if self.rounds and self.rounds[-1].decision.final:
            return self.rounds[-1].decision
        return None

    def arm(self, name: str) -> ArmState:
        """The arm called ``name``.

        :raises KeyError: naming the arm and the known ones.
        """
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"no arm {name!r} in this experiment (arms: {', '.join(a.name for a in self.arms)})")

    @property
    def live_arms(self) -> tuple[str, ...]:
        """Names of the arms taking traffic decisions."""
        return tuple(arm.name for arm in self.arms if arm.status == LIVE)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def to_json(self) -> str:
        """The state as JSON text."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentState:
        """Rebuild a state from :meth:`to_dict` output.

        :raises ValueError: on another schema version or a missing field, naming it.
        """
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"rollout state schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}")
        try:
            return cls(
                champion=data["champion"],
                arms=tuple(ArmState(**arm) for arm in data["arms"]),
                params=PolicyParams.from_dict(data["params"]),
                seed=data["seed"],
                started_at=data["started_at"],
                cursor=data["cursor"],
                weights=dict(data["weights"]),
                rounds=tuple(_round_from_dict(record) for record in data["rounds"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"rollout state is missing or has a malformed field: {error}") from error

    @classmethod
    def from_json(cls, text: str) -> ExperimentState:
        """Rebuild a state from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))


def _round_from_dict(data: Mapping[str, Any]) -> RoundRecord:
    decision = dict(data["decision"])
    decision["dropped"] = tuple(decision["dropped"])
    return RoundRecord(**{**data, "srm": SrmCheck(**data["srm"]), "decision": Decision(**decision)})
