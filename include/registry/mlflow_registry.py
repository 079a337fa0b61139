"""The ``local`` registry: MLflow Model Registry on SQLite inside the data root.

Layout: ``<data_root>/registry/mlflow.db`` (tracking and registry store) and
``<data_root>/registry/artifacts`` (the experiment's artifact root).  Each Airflow run key gets
one MLflow run (tag ``run_key``) holding the model folder as plain artifacts (safetensors,
tokenizer, label map: no pickles), the test metrics and the training parameters; the model
version points at that run's ``model`` artifact folder.  Approval status, approver and comment
are version tags; ``champion``/``challenger`` are registered-model aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.registry.base import (
    CHAMPION,
    DEFAULT_MODEL_NAME,
    PENDING,
    ModelVersion,
    check_alias,
    check_rollout_outcome,
    check_status,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion

EXPERIMENT = "reviewflow"
ARTIFACT_PATH = "model"
COMPLETE_TAG = "reviewflow.artifacts_complete"
LINEAGE_PREFIX = "lineage."
MAX_PARAM_LENGTH = 6000


def registry_dir(data_root: str | Path) -> Path:
    """``<data_root>/registry`` for a local data root (plain path or ``file://``)."""
    return Path(str(data_root).removeprefix("file://")) / "registry"


def database_uri(root: Path) -> str:
    """The SQLAlchemy URI of the registry database in the registry folder ``root``."""
    return f"sqlite:///{root.resolve() / 'mlflow.db'}"


def backend_uri(data_root: str | Path) -> str:
    """The SQLAlchemy URI of the registry database: ``sqlite:///<data_root>/registry/mlflow.db``."""
    return database_uri(registry_dir(data_root))


def ui_command(data_root: str | Path, port: int = 5000) -> list[str]:
    """The ``mlflow ui`` command that serves this registry (runs and models) on ``port``."""
    root = registry_dir(data_root).resolve()
    return [
        "mlflow", "ui", "--backend-store-uri", backend_uri(data_root),
        "--default-artifact-root", (root / "artifacts").as_uri(), "--host", "127.0.0.1", "--port", str(port),
    ]


class MlflowModelRegistry:
    """:class:`include.registry.base.ModelRegistry` on an MLflow tracking/registry store.

    :param root: folder holding ``mlflow.db`` and ``artifacts/`` (created on first use).
    :param model_name: the registered model's name.
    :param tracking_uri: an MLflow tracking server (``http://mlflow:5000``) to use instead of the
        folder: the team stack's (docker-compose.yml), which owns the store and the artefacts.
    """

    def __init__(self, root: str | Path, model_name: str = DEFAULT_MODEL_NAME, tracking_uri: str | None = None) -> None:
        self.root = Path(str(root).removeprefix("file://")).resolve()
        self.model_name = model_name
        self.tracking_uri = tracking_uri
        self._client: MlflowClient | None = None

    @classmethod
    def for_data_root(cls, data_root: str | Path, model_name: str = DEFAULT_MODEL_NAME) -> MlflowModelRegistry:
        return cls(registry_dir(data_root), model_name)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            if self.tracking_uri:
                uri = self.tracking_uri
            else:
                self.root.mkdir(parents=True, exist_ok=True)
                uri = database_uri(self.root)
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._client

    def exists(self) -> bool:
        """Whether the store exists: always for a tracking server; for a folder, its database file
        (a lookup on a fresh data root need not create it)."""
        return bool(self.tracking_uri) or (self.root / "mlflow.db").is_file()

    # --- registration -------------------------------------------------------------------------

    def register_version(
        self,
        run_key: str,
        model_uri: str,
        metrics: Mapping[str, float],
        lineage: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Log the model folder ``model_uri`` under the run key's MLflow run and register it (pending).

        Idempotent: a second call for the same ``run_key`` finds the run and its version and returns
        that version; an earlier attempt that died while uploading is completed, not duplicated.
        :raises ValueError: if ``model_uri`` is not a local folder holding ``config.json``.
        """
        model_dir = Path(model_uri.removeprefix("file://"))
        if not (model_dir / "config.json").is_file():
            raise ValueError(f"{model_uri}: not a model folder (no config.json); the local registry logs local folders")
        run_id = self._run_for(run_key, model_dir, metrics, params or {})
        existing = self._version_of_run(run_id)
        if existing is not None:
            return self._to_version(existing)
        self._ensure_registered_model()
        tags = {"run_key": run_key, "approval_status": PENDING, "approved_by": "", "approval_comment": ""}
        tags |= {LINEAGE_PREFIX + key: str(value) for key, value in lineage.items()}
        source = f"{self.client.get_run(run_id).info.artifact_uri}/{ARTIFACT_PATH}"
        created = self.client.create_model_version(self.model_name, source, run_id=run_id, tags=tags)
        return self._to_version(created)

    def _run_for(self, run_key: str, model_dir: Path, metrics: Mapping[str, float], params: Mapping[str, Any]) -> str:
        """The MLflow run of ``run_key`` with complete artefacts (created or finished here if needed)."""
        from mlflow.entities import Metric, Param, RunTag

        experiment_id = self._experiment_id()
        found = self.client.search_runs([experiment_id], f"tags.run_key = '{_quote(run_key)}'", max_results=1)
        if found and found[0].data.tags.get(COMPLETE_TAG) == "true":
            return found[0].info.run_id
        run_id = found[0].info.run_id if found else self.client.create_run(experiment_id, tags={"run_key": run_key}).info.run_id
        self.client.log_batch(
            run_id,
            metrics=[Metric(name, float(value), 0, 0) for name, value in sorted(metrics.items())],
            params=[Param(name, str(value)[:MAX_PARAM_LENGTH]) for name, value in sorted(params.items())],
            tags=[RunTag("mlflow.runName", run_key)],
        )
        self.client.log_artifacts(run_id, str(model_dir), ARTIFACT_PATH)
        self.client.set_tag(run_id, COMPLETE_TAG, "true")
        self.client.set_terminated(run_id)
        return run_id

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return experiment.experiment_id
        if self.tracking_uri:  # the server's artefact store (--artifacts-destination)
            return self.client.create_experiment(EXPERIMENT)
        return self.client.create_experiment(EXPERIMENT, artifact_location=(self.root / "artifacts").as_uri())

    def _ensure_registered_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.create_registered_model(self.model_name, description="reviewflow sentiment classifier")

    def _version_of_run(self, run_id: str) -> MlflowModelVersion | None:
        found = self.client.search_model_versions(f"name = '{_quote(self.model_name)}' and run_id = '{run_id}'")
        return min(found, key=lambda v: int(v.version)) if found else None

    # --- lookups ------------------------------------------------------------------------------

    def get_version(self, version: str) -> ModelVersion:
        return self._to_version(self.client.get_model_version(self.model_name, str(version)))

    def find_run(self, run_key: str) -> ModelVersion | None:
        """The version registered for ``run_key`` (the oldest if there are several), or ``None``."""
        return next((v for v in self.list_versions() if v.run_key == run_key), None)

    def list_versions(self) -> list[ModelVersion]:
        if not self.exists():
            return []
        found = self.client.search_model_versions(f"name = '{_quote(self.model_name)}'")
        return [self._to_version(v) for v in sorted(found, key=lambda v: int(v.version))]

    def version_for_alias(self, alias: str) -> ModelVersion | None:
        """The version ``alias`` points at, or ``None`` (also when nothing was ever registered)."""
        check_alias(alias)
        if not self.exists():
            return None
        from mlflow.exceptions import MlflowException

        try:
            return self._to_version(self.client.get_model_version_by_alias(self.model_name, alias))
        except MlflowException as error:
            if error.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
                return None
            raise

    def champion(self) -> ModelVersion | None:
        return self.version_for_alias(CHAMPION)

    # --- changes ------------------------------------------------------------------------------

    def set_approval(self, version: str, status: str, approved_by: str, comment: str) -> ModelVersion:
        """Record an approval decision as version tags ``approval_status``, ``approved_by``, ``approval_comment``."""
        check_status(status)
        for key, value in (("approval_status", status), ("approved_by", approved_by), ("approval_comment", comment)):
            self.client.set_model_version_tag(self.model_name, str(version), key, value)
        return self.get_version(version)

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, check_alias(alias), str(version))

    def remove_alias(self, alias: str) -> None:
        if self.version_for_alias(alias) is not None:
            self.client.delete_registered_model_alias(self.model_name, alias)

    def set_rollout_outcome(self, version: str, outcome: str, reason: str) -> ModelVersion:
        """Record the outcome as version tags ``rollout_outcome`` and ``rollout_reason``."""
        for key, value in (("rollout_outcome", check_rollout_outcome(outcome)), ("rollout_reason", reason)):
            self.client.set_model_version_tag(self.model_name, str(version), key, value)
        return self.get_version(version)

    def _to_version(self, found: MlflowModelVersion) -> ModelVersion:
        tags = found.tags or {}
        metrics = self.client.get_run(found.run_id).data.metrics if found.run_id else {}
        return ModelVersion(
            name=found.name,
            version=str(found.version),
            model_uri=found.source,
            run_key=tags.get("run_key", ""),
            status=tags.get("approval_status", PENDING),
            approved_by=tags.get("approved_by", ""),
            approval_comment=tags.get("approval_comment", ""),
            aliases=tuple(sorted(found.aliases or ())),
            metrics=dict(metrics),
            lineage={k.removeprefix(LINEAGE_PREFIX): v for k, v in tags.items() if k.startswith(LINEAGE_PREFIX)},
            rollout_outcome=tags.get("rollout_outcome", ""),
            rollout_reason=tags.get("rollout_reason", ""),
        )


def _quote(value: str) -> str:
    """``value`` safe inside a single-quoted MLflow filter string."""
    if "'" in value:
        raise ValueError(f"{value!r}: quotes are not allowed in run keys or model names")
    return value
