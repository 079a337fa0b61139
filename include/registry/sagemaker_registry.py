"""The ``aws`` registry: the SageMaker Model Registry (one model package group, one package per run).

Mapping of :class:`include.registry.base.ModelRegistry` onto SageMaker:

* registered model → model package group ``model_name``; version → ``ModelPackageVersion``;
* the run key → the package description ``reviewflow run <run_key>`` (immutable, and returned by
  ``ListModelPackages``, so finding a run's package is one listing: registration is idempotent);
* the model → one inference container (the Hugging Face PyTorch inference image, ``ModelDataUrl`` the
  training job's ``model.tar.gz``) taking and returning JSON (``application/json``);
* metrics → ``ModelMetrics.ModelQuality.Statistics`` points at the training ``metrics.json`` in S3,
  and the test metrics are also metadata ``metric.<name>``;
* approval → ``ModelApprovalStatus`` with ``ApprovalDescription`` ``"<approver>: <comment>"`` for people;
  the exact approver and comment are metadata ``approval.approved_by`` / ``approval.comment``;
* lineage → metadata ``lineage.<field>``; ``MetadataProperties`` carries the git commit and the Airflow run;
* aliases → SageMaker has none.  ``champion``/``challenger`` are version metadata ``alias.<name>``
  holding an assignment counter: :meth:`SageMakerModelRegistry.set_alias` writes a counter above every
  earlier one on the new holder, then removes the key from the old one, so an interrupted move still
  resolves to the newest assignment (the holder with the highest counter wins).

"Metadata" is the package's ``CustomerMetadataProperties`` (at most 50 keys; values ≤ 256 characters
of letters, digits, spaces and ``_.:/=+-@``).  A value outside that set is stored base64-encoded in
256-character chunks (``<key>.b64.0``, ``<key>.b64.1``, …) and decoded on reading.

Every ``UpdateModelPackage`` sends the package's complete state (status, description, all metadata and
the keys to remove), so the outcome is the same whether the service merges metadata keys (AWS) or
replaces the map (moto).  The client is a plain boto3 SageMaker client: no Airflow here.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterator, Mapping
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
from include.training.jobs import huggingface_image_uri

if TYPE_CHECKING:
    from botocore.client import BaseClient

CONTENT_TYPE = "application/json"
DESCRIPTION_PREFIX = "reviewflow run "
GROUP_DESCRIPTION = "reviewflow sentiment classifier"
MAX_METADATA_KEYS = 50
MAX_VALUE_LENGTH = 256
MAX_APPROVAL_DESCRIPTION = 1024
RUN_KEY = "run_key"
LINEAGE_PREFIX = "lineage."
METRIC_PREFIX = "metric."
ALIAS_PREFIX = "alias."
APPROVED_BY = "approval.approved_by"
APPROVAL_COMMENT = "approval.comment"
ROLLOUT_OUTCOME = "rollout.outcome"
ROLLOUT_REASON = "rollout.reason"
B64 = ".b64."
_SAFE_VALUE = re.compile(rf"[A-Za-z0-9 _.:/=+\-@]{{1,{MAX_VALUE_LENGTH}}}")
_CHUNK = re.compile(r"(.+)\.b64\.(\d+)")
# The newest Hugging Face PyTorch inference image in sagemaker 3.27's image_uris (CPU and GPU).
HF_INFERENCE_TRANSFORMERS_VERSION = "5.5.3"
HF_INFERENCE_PYTORCH_VERSION = "pytorch2.6.0"
HF_INFERENCE_PY_VERSION = "py312"
DEFAULT_INFERENCE_INSTANCE_TYPE = "ml.m5.xlarge"


@functools.cache
def huggingface_inference_image_uri(region: str, instance_type: str = DEFAULT_INFERENCE_INSTANCE_TYPE) -> str:
    """The inference image this project pins (see ``HF_INFERENCE_*``)."""
    return huggingface_image_uri(
        region, instance_type, "inference", HF_INFERENCE_TRANSFORMERS_VERSION, HF_INFERENCE_PYTORCH_VERSION, HF_INFERENCE_PY_VERSION
    )


def encode_metadata(values: Mapping[str, str]) -> dict[str, str]:
    """``CustomerMetadataProperties`` for ``values``: safe values as they are, others base64 in chunks; empty ones left out."""
    encoded: dict[str, str] = {}
    for key, value in values.items():
        if not value:
            continue
        if _SAFE_VALUE.fullmatch(value):
            encoded[key] = value
            continue
        text = base64.b64encode(value.encode()).decode()
        for index in range(0, len(text), MAX_VALUE_LENGTH):
            encoded[f"{key}{B64}{index // MAX_VALUE_LENGTH}"] = text[index : index + MAX_VALUE_LENGTH]
    return encoded


def decode_metadata(properties: Mapping[str, str]) -> dict[str, str]:
    """The inverse of :func:`encode_metadata`."""
    decoded: dict[str, str] = {}
    chunks: dict[str, dict[int, str]] = {}
    for key, value in properties.items():
        match = _CHUNK.fullmatch(key)
        if match:
            chunks.setdefault(match[1], {})[int(match[2])] = value
        else:
            decoded[key] = value
    for key, parts in chunks.items():
        decoded[key] = base64.b64decode("".join(parts[i] for i in sorted(parts))).decode()
    return decoded


def _prefixed(values: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {key.removeprefix(prefix): value for key, value in values.items() if key.startswith(prefix)}


class SageMakerModelRegistry:
    """:class:`include.registry.base.ModelRegistry` on the SageMaker Model Registry.

    :param client: a boto3 SageMaker client.
    :param model_name: the model package group.
    :param image_uri: the inference image; default: :func:`huggingface_inference_image_uri` for the client's region.
    :param inference_instance_type: instance type the default image is chosen for (CPU or GPU flavour).
    """

    def __init__(
        self,
        client: BaseClient,
        model_name: str = DEFAULT_MODEL_NAME,
        image_uri: str | None = None,
        inference_instance_type: str = DEFAULT_INFERENCE_INSTANCE_TYPE,
    ) -> None:
        self.client = client
        self.model_name = model_name
        self._image_uri = image_uri
        self.inference_instance_type = inference_instance_type

    @property
    def image_uri(self) -> str:
        if self._image_uri is None:
            self._image_uri = huggingface_inference_image_uri(self.client.meta.region_name, self.inference_instance_type)
        return self._image_uri

    # --- registration -------------------------------------------------------------------------

    def register_version(
        self,
        run_key: str,
        model_uri: str,
        metrics: Mapping[str, float],
        lineage: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Create the run's model package (``PendingManualApproval``) unless the run already has one.

        ``params`` are not stored separately: lineage ``training_params`` holds them.
        :raises ValueError: see :meth:`package_request`.
        """
        existing = self.find_run(run_key)
        if existing is not None:
            return existing
        request = self.package_request(run_key, model_uri, metrics, lineage)
        self.ensure_group()
        arn = self.client.create_model_package(
            ModelPackageGroupName=self.model_name, ModelApprovalStatus=PENDING, **request
        )["ModelPackageArn"]
        return self.version_of(arn)

    def package_request(
        self, run_key: str, model_uri: str, metrics: Mapping[str, float], lineage: Mapping[str, str]
    ) -> dict[str, Any]:
        """The run-specific ``CreateModelPackage`` fields (all but the group and the approval status).

        :param model_uri: the training job's ``s3://…/model.tar.gz``.
        :param lineage: must hold ``training_metrics``, the ``s3://`` URI of the training ``metrics.json``.
        :raises ValueError: naming the field when ``model_uri`` or the metrics URI is not on S3, or the
            metadata exceeds SageMaker's 50 keys.
        """
        if not (model_uri.startswith("s3://") and model_uri.endswith(".tar.gz")):
            raise ValueError(f"model_uri {model_uri!r}: the SageMaker registry needs an s3://…/model.tar.gz")
        metrics_uri = lineage.get("training_metrics", "")
        if not metrics_uri.startswith("s3://"):
            raise ValueError(f"lineage field 'training_metrics' {metrics_uri!r}: the SageMaker registry needs an s3:// URI")
        properties = self._metadata(
            {RUN_KEY: run_key}
            | {LINEAGE_PREFIX + key: str(value) for key, value in lineage.items()}
            | {METRIC_PREFIX + key: repr(float(value)) for key, value in metrics.items()}
        )
        generated_by = f"airflow:{lineage.get('airflow_dag_id', '')}/{lineage.get('airflow_run_id', run_key)}"
        return {
            "ModelPackageDescription": DESCRIPTION_PREFIX + run_key,
            "InferenceSpecification": {
                "Containers": [{"Image": self.image_uri, "ModelDataUrl": model_uri}],
                "SupportedContentTypes": [CONTENT_TYPE],
                "SupportedResponseMIMETypes": [CONTENT_TYPE],
            },
            "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": CONTENT_TYPE, "S3Uri": metrics_uri}}},
            "MetadataProperties": {"CommitId": lineage.get("git_commit", "unknown"), "GeneratedBy": generated_by[:1024]},
            "CustomerMetadataProperties": properties,
        }

    def ensure_group(self) -> None:
        """Create the model package group unless it exists."""
        from botocore.exceptions import ClientError

        try:
            self.client.describe_model_package_group(ModelPackageGroupName=self.model_name)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ValidationException":
                raise
            self.client.create_model_package_group(
                ModelPackageGroupName=self.model_name, ModelPackageGroupDescription=GROUP_DESCRIPTION
            )

    def find_run(self, run_key: str) -> ModelVersion | None:
        """The version registered for ``run_key`` (the oldest if an earlier race made two), or ``None``."""
        for summary in self._summaries():
            if summary.get("ModelPackageDescription") == DESCRIPTION_PREFIX + run_key:
                return self.version_of(summary["ModelPackageArn"])
        return None

    # --- lookups ------------------------------------------------------------------------------

    def _summaries(self) -> Iterator[dict[str, Any]]:
        """The group's package summaries, oldest first (none if the group does not exist)."""
        pages = self.client.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=self.model_name, ModelPackageType="Versioned", SortBy="CreationTime",
            SortOrder="Ascending",
        )
        for page in pages:
            yield from page["ModelPackageSummaryList"]

    def _descriptions(self) -> list[dict[str, Any]]:
        return [self.client.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in self._summaries()]

    def _describe(self, version: str) -> dict[str, Any]:
        for summary in self._summaries():
            if str(summary["ModelPackageVersion"]) == str(version):
                return self.client.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        raise KeyError(f"model package group {self.model_name} has no version {version}")

    def version_of(self, arn: str) -> ModelVersion:
        """The version with model package ARN ``arn``."""
        descriptions = self._descriptions()
        [described] = [d for d in descriptions if d["ModelPackageArn"] == arn]
        return self._to_version(described, self._alias_holders(descriptions))

    def get_version(self, version: str) -> ModelVersion:
        """:raises KeyError: if the group has no such version."""
        descriptions = self._descriptions()
        holders = self._alias_holders(descriptions)
        for described in descriptions:
            if str(described["ModelPackageVersion"]) == str(version):
                return self._to_version(described, holders)
        raise KeyError(f"model package group {self.model_name} has no version {version}")

    def list_versions(self) -> list[ModelVersion]:
        descriptions = self._descriptions()
        holders = self._alias_holders(descriptions)
        return [self._to_version(d, holders) for d in sorted(descriptions, key=lambda d: d["ModelPackageVersion"])]

    def version_for_alias(self, alias: str) -> ModelVersion | None:
        check_alias(alias)
        descriptions = self._descriptions()
        holders = self._alias_holders(descriptions)
        if alias not in holders:
            return None
        [described] = [d for d in descriptions if str(d["ModelPackageVersion"]) == holders[alias]]
        return self._to_version(described, holders)

    def champion(self) -> ModelVersion | None:
        return self.version_for_alias(CHAMPION)

    # --- changes ------------------------------------------------------------------------------

    def set_approval(self, version: str, status: str, approved_by: str, comment: str) -> ModelVersion:
        """``UpdateModelPackage``: status, ``ApprovalDescription`` ``"<approver>: <comment>"``, approver and comment as metadata."""
        check_status(status)
        described = self._describe(version)
        decoded = self._properties(described) | {APPROVED_BY: approved_by, APPROVAL_COMMENT: comment}
        note = f"{approved_by}: {comment}" if comment else approved_by
        self._update(described, status, note[:MAX_APPROVAL_DESCRIPTION], decoded)
        return self.get_version(version)

    def set_alias(self, alias: str, version: str) -> None:
        """Point ``alias`` at ``version``: a new highest counter on it (unless it already wins), then the key removed elsewhere."""
        key = ALIAS_PREFIX + check_alias(alias)
        descriptions = self._descriptions()
        by_version = {str(d["ModelPackageVersion"]): d for d in descriptions}
        if str(version) not in by_version:
            raise KeyError(f"model package group {self.model_name} has no version {version}")
        counters = {v: int(p[key]) for v, p in ((v, self._properties(d)) for v, d in by_version.items()) if key in p}
        if self._alias_holders(descriptions).get(alias) != str(version):
            self._update_metadata(by_version[str(version)], {key: str(max(counters.values(), default=0) + 1)}, ())
        for holder in counters:
            if holder != str(version):
                self._update_metadata(by_version[holder], {}, (key,))

    def remove_alias(self, alias: str) -> None:
        """Remove the alias's counter from every version holding one."""
        key = ALIAS_PREFIX + check_alias(alias)
        for described in self._descriptions():
            if key in self._properties(described):
                self._update_metadata(described, {}, (key,))

    def set_rollout_outcome(self, version: str, outcome: str, reason: str) -> ModelVersion:
        """Record the outcome as package metadata ``rollout.outcome`` and ``rollout.reason``."""
        changes = {ROLLOUT_OUTCOME: check_rollout_outcome(outcome), ROLLOUT_REASON: reason}
        self._update_metadata(self._describe(version), changes, ())
        return self.get_version(version)

    def _update_metadata(self, described: dict[str, Any], changes: Mapping[str, str], removed: tuple[str, ...]) -> None:
        decoded = {k: v for k, v in self._properties(described).items() if k not in removed} | dict(changes)
        self._update(described, described["ModelApprovalStatus"], described.get("ApprovalDescription", ""), decoded)

    def _update(self, described: dict[str, Any], status: str, note: str, decoded: Mapping[str, str]) -> None:
        """``UpdateModelPackage`` with the package's complete new state (see the module docstring)."""
        properties = self._metadata(decoded)
        stale = sorted(set(described.get("CustomerMetadataProperties") or {}) - set(properties))
        self.client.update_model_package(
            ModelPackageArn=described["ModelPackageArn"],
            ModelApprovalStatus=status,
            ApprovalDescription=note,
            CustomerMetadataProperties=properties,
            **({"CustomerMetadataPropertiesToRemove": stale} if stale else {}),
        )

    def _metadata(self, values: Mapping[str, str]) -> dict[str, str]:
        encoded = encode_metadata(values)
        if len(encoded) > MAX_METADATA_KEYS:
            sizes = ", ".join(f"{k}={len(v)}" for k, v in sorted(values.items()) if len(v) > MAX_VALUE_LENGTH)
            raise ValueError(
                f"model package metadata needs {len(encoded)} keys, SageMaker allows {MAX_METADATA_KEYS}; "
                f"values over {MAX_VALUE_LENGTH} characters: {sizes or 'none'}"
            )
        return encoded

    @staticmethod
    def _properties(described: Mapping[str, Any]) -> dict[str, str]:
        return decode_metadata(described.get("CustomerMetadataProperties") or {})

    def _alias_holders(self, descriptions: list[dict[str, Any]]) -> dict[str, str]:
        """``{alias: version}``: per alias, the version with the highest assignment counter."""
        best: dict[str, tuple[int, str]] = {}
        for described in descriptions:
            for alias, counter in _prefixed(self._properties(described), ALIAS_PREFIX).items():
                candidate = (int(counter), str(described["ModelPackageVersion"]))
                best[alias] = max(best.get(alias, candidate), candidate)
        return {alias: version for alias, (_, version) in best.items()}

    def _to_version(self, described: Mapping[str, Any], holders: Mapping[str, str]) -> ModelVersion:
        properties = self._properties(described)
        number = str(described["ModelPackageVersion"])
        return ModelVersion(
            name=described["ModelPackageGroupName"],
            version=number,
            model_uri=described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"],
            run_key=properties.get(RUN_KEY, ""),
            status=described.get("ModelApprovalStatus", PENDING),
            approved_by=properties.get(APPROVED_BY, ""),
            approval_comment=properties.get(APPROVAL_COMMENT, ""),
            aliases=tuple(sorted(alias for alias, holder in holders.items() if holder == number)),
            metrics={k: float(v) for k, v in _prefixed(properties, METRIC_PREFIX).items()},
            lineage=_prefixed(properties, LINEAGE_PREFIX),
            rollout_outcome=properties.get(ROLLOUT_OUTCOME, ""),
            rollout_reason=properties.get(ROLLOUT_REASON, ""),
        )
