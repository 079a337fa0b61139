"""What a rollout run keeps in storage between rounds: ``<data_root>/rollouts/<run key>/experiment.json``.

The experiment state (counts, weights, every round and decision), the endpoint's weights generation
that carries the experiment's current weights (``0`` until they are pushed), and the registry version
behind each arm. It is replaced whole after every change, so a retried or restarted task resumes from
the last committed round.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from include.rollout.state import ExperimentState

RECORD_FILE = "experiment.json"


@dataclass(frozen=True)
class ArmModel:
    """The registry version an arm (an endpoint variant) serves."""

    version: str
    model_uri: str


@dataclass(frozen=True)
class RolloutRecord:
    """One rollout: the experiment, the endpoint generation of its weights, the model of each arm.

    :param endpoint: the endpoint the experiment runs on.
    :param weights_generation: the endpoint's weights generation that holds ``experiment.weights``;
        ``0`` while they are not pushed yet.
    :param models: arm (variant) name → the registry version it serves.
    :param conclusion: what the conclude step did (empty until it ran).
    """

    endpoint: str
    experiment: ExperimentState
    models: Mapping[str, ArmModel]
    weights_generation: int = 0
    conclusion: Mapping[str, Any] = field(default_factory=dict)

    def with_experiment(self, experiment: ExperimentState, weights_generation: int = 0) -> RolloutRecord:
        """The record after a round: new weights are not pushed yet (generation 0) unless said."""
        return replace(self, experiment=experiment, weights_generation=weights_generation)

    def version_of(self, arm: str) -> str:
        return self.models[arm].version

    def to_json(self) -> bytes:
        payload = {
            "endpoint": self.endpoint,
            "experiment": self.experiment.to_dict(),
            "models": {arm: vars(model) for arm, model in self.models.items()},
            "weights_generation": self.weights_generation,
            "conclusion": dict(self.conclusion),
        }
        return json.dumps(payload, indent=1, sort_keys=True, allow_nan=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> RolloutRecord:
        """:raises ValueError: naming a missing or malformed field."""
        try:
            payload = json.loads(data)
            return cls(
                endpoint=payload["endpoint"],
                experiment=ExperimentState.from_dict(payload["experiment"]),
                models={arm: ArmModel(**model) for arm, model in payload["models"].items()},
                weights_generation=int(payload["weights_generation"]),
                conclusion=payload.get("conclusion") or {},
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"rollout record is missing or has a malformed field: {error}") from error
