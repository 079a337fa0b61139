"""What every registry backend speaks: model versions, approval statuses, aliases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

PENDING = "PendingManualApproval"
APPROVED = "Approved"
REJECTED = "Rejected"
APPROVAL_STATUSES = (PENDING, APPROVED, REJECTED)
CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)
# How a challenger's rollout ended (the rollout DAG records it on the version).
PROMOTED = "promoted"
ROLLED_BACK = "rolled_back"
NOT_PROMOTED = "not_promoted"
ROLLOUT_OUTCOMES = (PROMOTED, ROLLED_BACK, NOT_PROMOTED)
DEFAULT_MODEL_NAME = "reviewflow-sentiment"


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version.

    :param name: registered model (MLflow) or model package group (SageMaker).
    :param version: version number as a string (``"3"``).
    :param model_uri: where the model artefacts are (``file://…`` folder or ``s3://…/model.tar.gz``).
    :param run_key: the Airflow run that produced it (registration is idempotent per run key).
    :param status: one of :data:`APPROVAL_STATUSES`.
    :param approved_by: who decided (a user name, ``reviewflow-gate`` or ``timeout``); empty while pending.
    :param approval_comment: the reason given with the decision.
    :param aliases: aliases pointing at this version (``champion``, ``challenger``).
    :param metrics: test metrics recorded at registration.
    :param lineage: lineage fields (see :data:`include.registry.lineage.LINEAGE_FIELDS`).
    :param rollout_outcome: how its rollout ended (one of :data:`ROLLOUT_OUTCOMES`); empty before one did.
    :param rollout_reason: the rollout's reason for that outcome.
    """

    name: str
    version: str
    model_uri: str
    run_key: str
    status: str
    approved_by: str = ""
    approval_comment: str = ""
    aliases: tuple[str, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    lineage: Mapping[str, str] = field(default_factory=dict)
    rollout_outcome: str = ""
    rollout_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (XCom, run summary)."""
        return {
            "name": self.name,
            "version": self.version,
            "model_uri": self.model_uri,
            "run_key": self.run_key,
            "status": self.status,
            "approved_by": self.approved_by,
            "approval_comment": self.approval_comment,
            "aliases": list(self.aliases),
            "metrics": dict(self.metrics),
            "lineage": dict(self.lineage),
            "rollout_outcome": self.rollout_outcome,
            "rollout_reason": self.rollout_reason,
        }


class ModelRegistry(Protocol):
    """The registry interface both backends implement."""

    def register_version(
        self,
        run_key: str,
        model_uri: str,
        metrics: Mapping[str, float],
        lineage: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register the model of ``run_key`` as ``PendingManualApproval``; the same run key returns the same version."""
        ...

    def get_version(self, version: str) -> ModelVersion: ...

    def find_run(self, run_key: str) -> ModelVersion | None:
        """The version registered for ``run_key``, or ``None``."""
        ...

    def list_versions(self) -> list[ModelVersion]:
        """Every version, oldest first."""
        ...

    def version_for_alias(self, alias: str) -> ModelVersion | None: ...

    def champion(self) -> ModelVersion | None:
        """The version the ``champion`` alias points at (``None`` before the first approval)."""
        ...

    def set_approval(self, version: str, status: str, approved_by: str, comment: str) -> ModelVersion: ...

    def set_alias(self, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
        ...

    def remove_alias(self, alias: str) -> None:
        """Point ``alias`` at no version (nothing happens if it points at none)."""
        ...

    def set_rollout_outcome(self, version: str, outcome: str, reason: str) -> ModelVersion:
        """Record how the version's rollout ended (one of :data:`ROLLOUT_OUTCOMES`) and why."""
        ...


def check_status(status: str) -> str:
    """``status`` if it is an approval status; :class:`ValueError` naming the valid ones otherwise."""
    if status not in APPROVAL_STATUSES:
        raise ValueError(f"approval status must be one of {', '.join(APPROVAL_STATUSES)}, got {status!r}")
    return status


def check_rollout_outcome(outcome: str) -> str:
    if outcome not in ROLLOUT_OUTCOMES:
        raise ValueError(f"rollout outcome must be one of {', '.join(ROLLOUT_OUTCOMES)}, got {outcome!r}")
    return outcome


def check_alias(alias: str) -> str:
    if alias not in ALIASES:
        raise ValueError(f"alias must be one of {', '.join(ALIASES)}, got {alias!r}")
    return alias
