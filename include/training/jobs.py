"""How a training job is described: train.py arguments, the local ``SM_*`` layout, the SageMaker config.

Plain functions without Airflow; the training operators in ``plugins/reviewflow/operators/training.py``
call them.  The ``sagemaker`` SDK is imported only inside :func:`huggingface_image_uri`.

The job's code is the ``source_dir`` folder ``sourcedir/``: the entry point ``train.py``, its
``requirements.txt`` and the ``finetune`` package, shipped whole as ``sourcedir.tar.gz`` and run by
SageMaker's script mode as ``python train.py --<name> <value> …`` in ``/opt/ml/code``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.caching import code_files

SOURCE_DIR = Path(__file__).resolve().parent / "sourcedir"
ENTRY_POINT = "train.py"
CHANNELS = ("train", "validation", "test")
# sourcedir/train.py's exit code for an InputError (its EXIT_BAD_INPUT: train.py runs without this module).
EXIT_BAD_INPUT = 65
# The newest Hugging Face PyTorch training image in sagemaker 3.27's image_uris (GPU instances only);
# transformers 5.x like the local stack.
HF_TRANSFORMERS_VERSION = "5.3.0"
HF_PYTORCH_VERSION = "pytorch2.9.0"
HF_PY_VERSION = "py312"
JOB_NAME_MAX = 63


def read_manifest(payload: bytes, uri: str) -> dict[str, Any]:
    """Parse and check a features ``manifest.json``.

    :raises ValueError: naming ``uri`` and the missing or malformed field.
    """
    manifest = json.loads(payload)
    for name in ("class_weights", "max_seq_length", "truncation", "label_names"):
        if name not in manifest:
            raise ValueError(f"{uri}: field {name!r} is missing")
    labels = manifest["label_names"]
    if sorted(manifest["class_weights"]) != [str(i) for i in range(len(labels))]:
        raise ValueError(f"{uri}: field 'class_weights' must have keys 0..{len(labels) - 1}, got {manifest['class_weights']}")
    return manifest


def job_hyperparameters(manifest: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """train.py hyperparameters: class weights, sequence length, truncation and labels from the manifest, then ``overrides``."""
    weights = manifest["class_weights"]
    values: dict[str, Any] = {
        "class_weights": ",".join(str(weights[str(i)]) for i in range(len(weights))),
        "max_seq_length": manifest["max_seq_length"],
        "truncation": manifest["truncation"],
        "label_names": ",".join(manifest["label_names"]),
        **(overrides or {}),
    }
    return {name: str(value).lower() if isinstance(value, bool) else str(value) for name, value in values.items()}


def cli_arguments(hyperparameters: Mapping[str, str]) -> list[str]:
    """``{"epochs": "2"}`` → ``["--epochs", "2"]`` (what the SageMaker container passes to train.py)."""
    return [part for name, value in sorted(hyperparameters.items()) for part in (f"--{name}", value)]


@dataclass(frozen=True)
class LocalLayout:
    """Folders of one local training run, laid out like ``/opt/ml`` in a training container.

    :param features: the features run folder holding one subfolder per channel.
    :param staging: written by the job (``model/``, ``metrics.json``, ``plots/``), renamed to ``final`` on success.
    :param final: ``<data_root>/models/<run_key>``.
    :param checkpoints: kept across retries so a restarted job resumes; removed after success.
    """

    features: Path
    staging: Path
    final: Path
    checkpoints: Path

    @classmethod
    def for_run(cls, data_root: Path, run_key: str) -> LocalLayout:
        models = data_root / "models"
        return cls(
            features=data_root / "features" / run_key,
            staging=models / f".{run_key}.staging",
            final=models / run_key,
            checkpoints=data_root / "checkpoints" / run_key,
        )

    def environment(self) -> dict[str, str]:
        """The ``SM_*`` variables a SageMaker training container would set for this run."""
        env = {
            "SM_MODEL_DIR": str(self.staging / "model"),
            "SM_OUTPUT_DATA_DIR": str(self.staging),
            "SM_CHECKPOINT_DIR": str(self.checkpoints),
            "SM_CHANNELS": json.dumps([c for c in CHANNELS if (self.features / c).is_dir()]),
        }
        for channel in CHANNELS:
            if (self.features / channel).is_dir():
                env[f"SM_CHANNEL_{channel.upper()}"] = str(self.features / channel)
        return env


def sagemaker_name(prefix: str, key: str, suffix: str = "") -> str:
    """``<prefix>-<key><suffix>`` as a valid SageMaker resource name (≤ 63 chars of ``[A-Za-z0-9-]``).

    Other characters become ``-``; a name too long is cut and ends with a hash of ``key``, so distinct
    keys keep distinct names and the same key always gives the same name.
    """
    body = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9]+", "-", key)).strip("-")
    name = f"{prefix}-{body}"
    room = JOB_NAME_MAX - len(suffix)
    if len(name) > room:
        digest = hashlib.sha256(key.encode()).hexdigest()[:8]
        name = f"{name[: room - 9].rstrip('-')}-{digest}"
    return name + suffix


def training_job_name(run_key: str, attempt: int = 0) -> str:
    """A valid SageMaker job name that is the same on every retry: ``reviewflow-<run key>``.

    ``attempt`` > 0 appends ``-r<attempt>`` (a new job after a failed one).
    """
    return sagemaker_name("reviewflow", run_key, f"-r{attempt}" if attempt else "")


def source_files() -> list[Path]:
    """Every file of the ``source_dir`` (code and requirements, no ``__pycache__``), sorted: what the job runs."""
    return code_files(SOURCE_DIR)


def source_tarball() -> bytes:
    """``sourcedir.tar.gz``: :func:`source_files` under their paths in ``SOURCE_DIR``, byte-identical for identical sources."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path in source_files():
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(SOURCE_DIR).as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def huggingface_image_uri(
    region: str, instance_type: str, scope: str, transformers_version: str, pytorch_version: str, py_version: str
) -> str:
    """A Hugging Face PyTorch ``scope`` (training / inference) image URI, from the SDK's static table (``sagemaker.core.image_uris``, no network)."""
    from sagemaker.core import image_uris

    return image_uris.retrieve(
        "huggingface",
        region=region,
        version=transformers_version,
        base_framework_version=pytorch_version,
        py_version=py_version,
        instance_type=instance_type,
        image_scope=scope,
    )


def huggingface_training_image_uri(region: str, instance_type: str) -> str:
    """The training image this project pins (see ``HF_*_VERSION``)."""
    return huggingface_image_uri(region, instance_type, "training", HF_TRANSFORMERS_VERSION, HF_PYTORCH_VERSION, HF_PY_VERSION)


@dataclass(frozen=True)
class SageMakerJobSpec:
    """Everything a SageMaker ``CreateTrainingJob`` request for one run needs.

    :param features_uri: ``s3://`` features run prefix holding one prefix per channel.
    :param output_uri: ``s3://`` prefix SageMaker writes ``<job>/output/{model,output}.tar.gz`` under.
    :param checkpoint_uri: ``s3://`` prefix synced with ``/opt/ml/checkpoints`` (shared by every attempt).
    :param source_uri: ``s3://`` URI of ``sourcedir.tar.gz``.
    :param max_wait_seconds: with spot, how long to wait for capacity plus run time (≥ ``max_run_seconds``).
    """

    job_name: str
    image_uri: str
    role_arn: str
    region: str
    instance_type: str
    features_uri: str
    output_uri: str
    checkpoint_uri: str
    source_uri: str
    hyperparameters: Mapping[str, str]
    channels: tuple[str, ...] = CHANNELS
    instance_count: int = 1
    volume_size_gb: int = 30
    max_run_seconds: int = 3 * 3600
    use_spot: bool = False
    max_wait_seconds: int | None = None


def sagemaker_training_config(spec: SageMakerJobSpec) -> dict[str, Any]:
    """The ``CreateTrainingJob`` request for ``spec`` (script mode on the Hugging Face image).

    Hyperparameter values are JSON-encoded like the SageMaker SDK does; the container's
    training toolkit decodes them and runs ``python train.py --name value ...``.
    """
    if spec.use_spot and (spec.max_wait_seconds or 0) < spec.max_run_seconds:
        raise ValueError(
            f"with managed spot, max_wait_seconds ({spec.max_wait_seconds}) must be ≥ max_run_seconds ({spec.max_run_seconds})"
        )
    sagemaker_params = {
        "sagemaker_program": ENTRY_POINT,
        "sagemaker_submit_directory": spec.source_uri,
        "sagemaker_region": spec.region,
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": spec.job_name,
    }
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": spec.max_run_seconds}
    if spec.use_spot:
        stopping["MaxWaitTimeInSeconds"] = int(spec.max_wait_seconds or 0)
    channel_uri = lambda name: f"{spec.features_uri.rstrip('/')}/{name}/"  # noqa: E731
    return {
        "TrainingJobName": spec.job_name,
        "AlgorithmSpecification": {"TrainingImage": spec.image_uri, "TrainingInputMode": "File"},
        "RoleArn": spec.role_arn,
        "HyperParameters": {k: json.dumps(v) for k, v in {**spec.hyperparameters, **sagemaker_params}.items()},
        "InputDataConfig": [
            {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": channel_uri(name),
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "application/x-parquet",
                "InputMode": "File",
            }
            for name in spec.channels
        ],
        "OutputDataConfig": {"S3OutputPath": spec.output_uri},
        "CheckpointConfig": {"S3Uri": spec.checkpoint_uri, "LocalPath": "/opt/ml/checkpoints"},
        "ResourceConfig": {
            "InstanceType": spec.instance_type,
            "InstanceCount": spec.instance_count,
            "VolumeSizeInGB": spec.volume_size_gb,
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spec.use_spot,
        "Environment": {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"},
        "Tags": [{"Key": "reviewflow:job", "Value": spec.job_name}],
    }


def extract_outputs(output_tar: bytes) -> dict[str, bytes]:
    """The files of a SageMaker ``output.tar.gz`` (``metrics.json``, ``history.json``, ``plots/*.png``)."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(output_tar), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("./")
            if member.isfile() and not name.startswith("/") and ".." not in Path(name).parts:
                extracted = tar.extractfile(member)
                if extracted is not None:
                    files[name] = extracted.read()
    return files
