"""The endpoint on SageMaker: resource names, the model archive carrying the inference code, API requests.

Plain functions (no Airflow, no AWS calls); :mod:`reviewflow.hooks.endpoint` makes the calls.

* One SageMaker model per (registry version, int8, inference code): its archive is the training job's
  ``model.tar.gz`` plus ``code/`` — ``inference.py`` (:mod:`include.serving.inference`), what it imports
  (the ``include/features`` text and tokenizer modules, the training job's ``finetune`` package with the
  model class and its loader), ``requirements.txt`` — and ``serving.json``
  (variant, model version, int8), the layout the Hugging Face inference toolkit loads
  (``SAGEMAKER_PROGRAM=inference.py``, ``code/`` on ``sys.path``).  The model name ends with a digest of
  the code, so changed code gets a new model and an unchanged one is reused.
* One endpoint config per distinct variant set (names, models, weights, instances, capture): its name
  ends with a digest of that content, so a retry finds the config it created, never a second one.
* Data Capture records every request and answer as JSON lines under
  ``<data_root>/endpoint/<endpoint>/capture/<endpoint>/<variant>/yyyy/mm/dd/hh/``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from include.config import REPO_ROOT
from include.serving.inference import JSON, SERVING_FILE
from include.serving.variants import variant_name
from include.training.jobs import SOURCE_DIR, sagemaker_name

INFERENCE_ENTRY_POINT = "inference.py"
CODE_DIR = "code"
# Archive path under code/ → file in this repository: the inference script and everything it imports.
CODE_FILES: dict[str, Path] = {
    INFERENCE_ENTRY_POINT: REPO_ROOT / "include" / "serving" / "inference.py",
    "requirements.txt": REPO_ROOT / "include" / "serving" / "requirements.txt",
    "include/__init__.py": REPO_ROOT / "include" / "__init__.py",
    "include/features/__init__.py": REPO_ROOT / "include" / "features" / "__init__.py",
    "include/features/text.py": REPO_ROOT / "include" / "features" / "text.py",
    "include/features/tokenizer.py": REPO_ROOT / "include" / "features" / "tokenizer.py",
    "include/training/__init__.py": REPO_ROOT / "include" / "training" / "__init__.py",
    **{path.relative_to(REPO_ROOT).as_posix(): path for path in sorted((SOURCE_DIR / "finetune").glob("*.py"))},
}
MODEL_VERSION_TAG = "reviewflow:model_version"
ENDPOINT_TAG = "reviewflow:endpoint"
CAPTURE_SAMPLING_PERCENT = 100


def code_digest() -> str:
    """SHA-256 over the inference code's archive paths and bytes."""
    digest = hashlib.sha256()
    for name, path in sorted(CODE_FILES.items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def model_name(group: str, model_version: str, int8: bool) -> str:
    """``<group>-v<version>[-int8]-<code digest>`` (≤ 63 characters)."""
    return sagemaker_name(group, f"{variant_name(model_version, int8)}-{code_digest()[:8]}")


def serving_info(model_version: str, int8: bool) -> dict[str, Any]:
    """What ``serving.json`` tells ``model_fn``."""
    return {"variant": variant_name(model_version, int8), "model_version": str(model_version), "int8": int8}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def write_model_archive(source: IO[bytes], target: IO[bytes], model_version: str, int8: bool) -> list[str]:
    """Copy the training ``model.tar.gz`` from ``source`` to ``target`` with ``code/`` and ``serving.json`` added.

    Only regular files with relative, non-escaping paths are copied (an old ``code/`` or ``serving.json``
    is replaced); gzip level 1, since safetensors hardly compress.  Returns the archive's file names.
    """
    names = []
    with (
        tarfile.open(fileobj=source, mode="r|gz") as archive,
        gzip.GzipFile(fileobj=target, mode="wb", compresslevel=1, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w|", format=tarfile.PAX_FORMAT) as out,
    ):
        for member in archive:
            name = member.name.removeprefix("./")
            parts = Path(name).parts
            unsafe = name.startswith("/") or ".." in parts
            if not member.isfile() or unsafe or parts[0] == CODE_DIR or name == SERVING_FILE:
                continue
            extracted = archive.extractfile(member)
            if extracted is not None:
                _add(out, name, extracted.read())
                names.append(name)
        for name, path in sorted(CODE_FILES.items()):
            _add(out, f"{CODE_DIR}/{name}", path.read_bytes())
            names.append(f"{CODE_DIR}/{name}")
        _add(out, SERVING_FILE, json.dumps(serving_info(model_version, int8)).encode())
        names.append(SERVING_FILE)
    return names


def model_request(name: str, image_uri: str, model_data_url: str, role_arn: str, model_version: str) -> dict[str, Any]:
    """``CreateModel``: the Hugging Face inference image running ``code/inference.py`` of the archive."""
    return {
        "ModelName": name,
        "ExecutionRoleArn": role_arn,
        "PrimaryContainer": {
            "Image": image_uri,
            "ModelDataUrl": model_data_url,
            "Environment": {
                "SAGEMAKER_PROGRAM": INFERENCE_ENTRY_POINT,
                "SAGEMAKER_SUBMIT_DIRECTORY": f"/opt/ml/model/{CODE_DIR}",
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
            },
        },
        "Tags": [{"Key": MODEL_VERSION_TAG, "Value": str(model_version)}],
    }


def capture_uri(data_root: str, endpoint_name: str) -> str:
    """Where Data Capture writes (SageMaker appends ``<endpoint>/<variant>/yyyy/mm/dd/hh/``)."""
    return f"{data_root.rstrip('/')}/endpoint/{endpoint_name}/capture"


def data_capture_config(destination: str) -> dict[str, Any]:
    """Capture every request and answer, JSON bodies as text (not base64)."""
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": CAPTURE_SAMPLING_PERCENT,
        "DestinationS3Uri": destination,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": [JSON]},
    }


def endpoint_config_request(
    endpoint_name: str, variants: Sequence[tuple[str, str, float]], instance_type: str, instance_count: int,
    capture_destination: str,
) -> dict[str, Any]:
    """``CreateEndpointConfig`` for ``(variant name, model name, weight)`` triples, named by a digest of its content."""
    production = [
        {"VariantName": variant, "ModelName": model, "InitialInstanceCount": instance_count,
         "InstanceType": instance_type, "InitialVariantWeight": float(weight)}
        for variant, model, weight in variants
    ]
    capture = data_capture_config(capture_destination)
    digest = hashlib.sha256(json.dumps([production, capture], sort_keys=True).encode()).hexdigest()[:12]
    return {
        "EndpointConfigName": sagemaker_name(endpoint_name, digest),
        "ProductionVariants": production,
        "DataCaptureConfig": capture,
        "Tags": [{"Key": ENDPOINT_TAG, "Value": endpoint_name}],
    }


def current_weights(described_endpoint: Mapping[str, Any]) -> dict[str, float]:
    """``{variant: weight}`` of a ``DescribeEndpoint`` answer (a variant without ``CurrentWeight`` has 0)."""
    variants = described_endpoint.get("ProductionVariants", [])
    return {v["VariantName"]: float(v.get("CurrentWeight", 0.0)) for v in variants}


@dataclass(frozen=True)
class WeightsGeneration:
    """The variant weights in force from ``since`` (UTC, ISO 8601) until the next generation."""

    generation: int
    weights: dict[str, float]
    since: str


@dataclass(frozen=True)
class WeightsHistory:
    """Every weights generation of a SageMaker endpoint, oldest first.

    SageMaker keeps no such counter, so the endpoint hook appends a generation each time the variants or
    weights it set are in service, and the S3 feedback reader assigns captured requests to the generation
    in force at their ``inferenceTime``.  Stored as ``<data_root>/endpoint/<endpoint>/weights_history.json``.
    """

    generations: tuple[WeightsGeneration, ...] = ()

    @property
    def weights_generation(self) -> int:
        return self.generations[-1].generation if self.generations else 0

    def advanced(self, weights: Mapping[str, float], since: dt.datetime) -> WeightsHistory:
        """With a new generation for ``weights`` (unchanged if they are already the current ones)."""
        if self.generations and self.generations[-1].weights == dict(weights):
            return self
        entry = WeightsGeneration(self.weights_generation + 1, dict(weights), since.astimezone(dt.UTC).isoformat())
        return WeightsHistory((*self.generations, entry))

    def generation_at(self, moment: dt.datetime) -> int:
        """The generation in force at ``moment`` (0 before the first)."""
        current = 0
        for entry in self.generations:
            if dt.datetime.fromisoformat(entry.since) <= moment:
                current = entry.generation
        return current

    def to_json(self) -> bytes:
        return json.dumps({"generations": [asdict(g) for g in self.generations]}, indent=2).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> WeightsHistory:
        return cls(tuple(WeightsGeneration(**g) for g in json.loads(payload)["generations"]))


def weights_history_uri(data_root: str, endpoint_name: str) -> str:
    return f"{data_root.rstrip('/')}/endpoint/{endpoint_name}/weights_history.json"
