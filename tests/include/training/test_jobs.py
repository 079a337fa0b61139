"""Job descriptions: hyperparameters, the local SM_* layout, job names, the SageMaker request."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from include.training import jobs

MANIFEST = {
    "class_weights": {"0": 2.0, "1": 4.5, "2": 0.4},
    "max_seq_length": 64,
    "truncation": "head_tail",
    "label_names": ["negative", "neutral", "positive"],
}


def test_read_manifest_names_the_bad_field() -> None:
    assert jobs.read_manifest(json.dumps(MANIFEST).encode(), "m.json") == MANIFEST
    with pytest.raises(ValueError, match="m.json: field 'max_seq_length' is missing"):
        jobs.read_manifest(json.dumps({k: v for k, v in MANIFEST.items() if k != "max_seq_length"}).encode(), "m.json")
    with pytest.raises(ValueError, match="m.json: field 'class_weights' must have keys 0..2"):
        jobs.read_manifest(json.dumps({**MANIFEST, "class_weights": {"0": 1}}).encode(), "m.json")


def test_hyperparameters_come_from_manifest_then_overrides() -> None:
    values = jobs.job_hyperparameters(MANIFEST, {"epochs": 2, "group_by_length": False, "max_seq_length": 32})
    assert values == {
        "class_weights": "2.0,4.5,0.4",
        "max_seq_length": "32",
        "truncation": "head_tail",
        "label_names": "negative,neutral,positive",
        "epochs": "2",
        "group_by_length": "false",
    }
    assert jobs.cli_arguments({"b": "1", "a": "x"}) == ["--a", "x", "--b", "1"]


def test_train_py_accepts_what_the_jobs_pass(tmp_path: Path) -> None:
    from include.training.sourcedir.finetune.config import parse_args

    config, _ = parse_args(jobs.cli_arguments(jobs.job_hyperparameters(MANIFEST, {"group_by_length": False})), {})
    assert config.class_weights == "2.0,4.5,0.4" and config.max_seq_length == 64 and config.group_by_length is False


def test_local_layout_mirrors_a_training_container(tmp_path: Path) -> None:
    layout = jobs.LocalLayout.for_run(tmp_path, "run-1")
    for channel in ("train", "test"):
        (layout.features / channel).mkdir(parents=True)
    env = layout.environment()
    assert env["SM_CHANNEL_TRAIN"] == str(tmp_path / "features/run-1/train")
    assert "SM_CHANNEL_VALIDATION" not in env and json.loads(env["SM_CHANNELS"]) == ["train", "test"]
    assert env["SM_MODEL_DIR"] == str(layout.staging / "model") and env["SM_OUTPUT_DATA_DIR"] == str(layout.staging)
    assert layout.final == tmp_path / "models/run-1" and env["SM_CHECKPOINT_DIR"] == str(tmp_path / "checkpoints/run-1")


@pytest.mark.parametrize(
    "key",
    ["manual__2026-01-02T03-04-05.123456-00-00", "scheduled__2026-01-02", "x" * 200, "a__b" + "_" * 80 + "c"],
)
def test_training_job_names_are_valid_and_stable(key: str) -> None:
    for attempt in (0, 3):
        name = jobs.training_job_name(key, attempt)
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name), name
        assert name == jobs.training_job_name(key, attempt)
    assert jobs.training_job_name(key, 3).endswith("-r3")
    assert jobs.training_job_name("x" * 200) != jobs.training_job_name("x" * 201)


def test_source_tarball_is_reproducible_and_holds_the_entry_point() -> None:
    data = jobs.source_tarball()
    assert data == jobs.source_tarball()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = sorted(tar.getnames())
    assert names == sorted(path.relative_to(jobs.SOURCE_DIR).as_posix() for path in jobs.source_files())
    package = {f"finetune/{path.name}" for path in (jobs.SOURCE_DIR / "finetune").glob("*.py")}
    assert {"requirements.txt", "train.py", "finetune/loop.py", "finetune/model.py"} | package <= set(names)
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_source_tarball_trains_on_its_own_as_script_mode_runs_it(
    features_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Unpacked into an empty folder and run as ``python train.py --…`` there, with no repository on the path."""
    code = tmp_path / "opt/ml/code"
    with tarfile.open(fileobj=io.BytesIO(jobs.source_tarball())) as tar:
        tar.extractall(code, filter="data")
    hyperparameters = {"model_name_or_path": str(tiny_model_dir), "max_steps": "2", "max_seq_length": "64",
                       "num_threads": "1", "group_by_length": "True"}
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "SM_MODEL_DIR": str(tmp_path / "model"),
           "SM_OUTPUT_DATA_DIR": str(tmp_path / "output"), "SM_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
           "SM_CHANNEL_TRAIN": str(features_dir / "train"), "SM_CHANNEL_TEST": str(features_dir / "test")}
    result = subprocess.run(
        [sys.executable, jobs.ENTRY_POINT, *jobs.cli_arguments(hyperparameters)],
        cwd=code, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads((tmp_path / "output/metrics.json").read_text())
    assert metrics["training"]["global_step"] == 2 and metrics["hyperparameters"]["group_by_length"] is True
    assert (tmp_path / "model/model.safetensors").is_file()


def test_image_uri_comes_from_the_sdk_table() -> None:
    uri = jobs.huggingface_training_image_uri("eu-west-1", "ml.g5.xlarge")
    assert uri.startswith("763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-training:")
    assert "transformers5.3.0" in uri and "gpu" in uri


def _spec(**changes: object) -> jobs.SageMakerJobSpec:
    values: dict[str, object] = dict(
        job_name="reviewflow-run-1",
        image_uri="img:1",
        role_arn="arn:aws:iam::123456789012:role/sm",
        region="eu-west-1",
        instance_type="ml.g5.xlarge",
        features_uri="s3://b/features/run-1",
        output_uri="s3://b/models/run-1/sagemaker/",
        checkpoint_uri="s3://b/checkpoints/run-1/",
        source_uri="s3://b/code/run-1/sourcedir.tar.gz",
        hyperparameters={"epochs": "2"},
    )
    values.update(changes)
    return jobs.SageMakerJobSpec(**values)  # type: ignore[arg-type]


def test_sagemaker_config_is_script_mode_with_channels_and_checkpoints() -> None:
    config = jobs.sagemaker_training_config(_spec())
    hp = {k: json.loads(v) for k, v in config["HyperParameters"].items()}
    assert hp["sagemaker_program"] == "train.py" and hp["epochs"] == "2"
    assert hp["sagemaker_submit_directory"] == "s3://b/code/run-1/sourcedir.tar.gz"
    assert [(c["ChannelName"], c["DataSource"]["S3DataSource"]["S3Uri"]) for c in config["InputDataConfig"]] == [
        ("train", "s3://b/features/run-1/train/"),
        ("validation", "s3://b/features/run-1/validation/"),
        ("test", "s3://b/features/run-1/test/"),
    ]
    assert config["CheckpointConfig"] == {"S3Uri": "s3://b/checkpoints/run-1/", "LocalPath": "/opt/ml/checkpoints"}
    assert config["EnableManagedSpotTraining"] is False and "MaxWaitTimeInSeconds" not in config["StoppingCondition"]


def test_spot_needs_a_max_wait_covering_the_run_time() -> None:
    config = jobs.sagemaker_training_config(_spec(use_spot=True, max_run_seconds=3600, max_wait_seconds=7200))
    assert config["EnableManagedSpotTraining"] is True
    assert config["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    with pytest.raises(ValueError, match="max_wait_seconds"):
        jobs.sagemaker_training_config(_spec(use_spot=True, max_run_seconds=3600, max_wait_seconds=None))


def test_extract_outputs_skips_unsafe_members() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("metrics.json", b"{}"), ("plots/loss_curves.png", b"png"), ("../evil", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert jobs.extract_outputs(buffer.getvalue()) == {"metrics.json": b"{}", "plots/loss_curves.png": b"png"}
