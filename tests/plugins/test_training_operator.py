"""Training and evaluation operators: local subprocess (timeout, kill, resume) and SageMaker (mocked AWS)."""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from include.config import AwsSettings, load_settings
from include.registry.base import CHAMPION
from include.registry.mlflow_registry import MlflowModelRegistry
from reviewflow.operators import training as ops
from reviewflow.run_summary import run_summary_uri
from tests.conftest import AWS_CONN_ID, aws_connection, task_context
from tests.reliability import ReliabilityRecord

TINY = {"max_seq_length": 64, "num_threads": 1, "train_batch_size": 16, "checkpoint_steps": 100, "logging_steps": 2}


context = partial(task_context, "reviews_train", "train")  # context(run_id)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from include.training.sample_features import write_sample_features, write_tiny_bert

    base = tmp_path_factory.mktemp("training-op")
    return {
        "features": write_sample_features(base / "features", rows=300, max_seq_length=64),
        "tiny": write_tiny_bert(base / "tiny"),
    }


@pytest.fixture(scope="module")
def model_tarball(shared: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What SageMaker uploads as model.tar.gz: SM_MODEL_DIR of a (tiny, 4-step) train.py run."""
    from include.training.sourcedir.finetune.config import parse_args
    from include.training.sourcedir.finetune.loop import train

    work = tmp_path_factory.mktemp("sm-model")
    features = shared["features"]
    config, paths = parse_args(
        ["--model_name_or_path", str(shared["tiny"]), "--max_steps", "4", "--num_threads", "1", "--max_seq_length", "64"],
        {"SM_MODEL_DIR": str(work / "model"), "SM_OUTPUT_DATA_DIR": str(work / "out"),
         "SM_CHECKPOINT_DIR": str(work / "ckpt"), "SM_CHANNEL_TRAIN": str(features / "train")},
    )
    train(config, paths)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(work / "model", arcname=".")
    return buffer.getvalue()


@pytest.fixture
def data_root(tmp_path: Path, shared: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    import shutil

    for key in ("run-0", "run-1"):
        shutil.copytree(shared["features"], tmp_path / "features" / key)
    monkeypatch.setenv("REVIEWFLOW_BACKEND", "local")
    monkeypatch.setenv("REVIEWFLOW_DATA_ROOT", str(tmp_path))
    return tmp_path


def summary(root: Path, key: str) -> dict[str, Any]:
    return json.loads(Path(run_summary_uri(load_settings(), key)).read_text())


def test_factory_chooses_the_backend_class() -> None:
    assert isinstance(ops.TrainModelOperator(task_id="t", backend="local", use_spot=True), ops.LocalTrainModelOperator)
    aws = ops.TrainModelOperator(task_id="t", backend="aws", use_spot=True, max_wait_seconds=7200, aws_conn_id=AWS_CONN_ID)
    assert isinstance(aws, ops.SageMakerTrainModelOperator) and aws.use_spot


def test_local_training_then_evaluation_against_the_champion(data_root: Path, shared: dict[str, Path]) -> None:
    hyper = {**TINY, "model_name_or_path": str(shared["tiny"]), "max_steps": 6}
    for key in ("run-0", "run-1"):
        result = ops.TrainModelOperator(task_id="train", hyperparameters=hyper).execute(context(key))
        model = data_root / "models" / key
        assert result["model_uri"] == str(model / "model") and result["global_step"] == 6
        for name in ("model/model.safetensors", "model/label_map.json", "metrics.json", "plots/loss_curves.png"):
            assert (model / name).is_file(), name
        assert not (data_root / "checkpoints" / key).exists() and not list((data_root / "models").glob(".*staging"))
        assert summary(data_root, key)["training"] == json.loads(json.dumps(result))

    evaluated = ops.EvaluateModelsOperator(task_id="evaluate", aws_conn_id=AWS_CONN_ID).execute(context("run-1"))
    assert evaluated["champion_macro_f1"] is None and evaluated["challenger_wins"] is True

    registry = MlflowModelRegistry.for_data_root(data_root)
    champion = registry.register_version("run-0", str(data_root / "models/run-0/model"), {}, {"airflow_run_id": "run-0"})
    registry.set_alias(CHAMPION, champion.version)
    evaluated = ops.EvaluateModelsOperator(task_id="evaluate", aws_conn_id=AWS_CONN_ID).execute(context("run-1"))
    comparison = json.loads(Path(evaluated["evaluation_uri"]).read_text())
    assert evaluated["champion_macro_f1"] is not None
    assert evaluated["delta_macro_f1"] == pytest.approx(evaluated["challenger_macro_f1"] - evaluated["champion_macro_f1"])
    assert summary(data_root, "run-1")["evaluation"]["deltas"] == comparison["deltas"]
    trained = json.loads((data_root / "models/run-1/metrics.json").read_text())
    assert comparison["challenger"]["confusion_matrix"] == trained["test"]["confusion_matrix"]
    low, high = evaluated["delta_macro_f1_ci95"]
    assert low <= evaluated["delta_macro_f1"] <= high and evaluated["test_rows"] == comparison["challenger"]["rows"]
    assert comparison["challenger"]["per_category"] and comparison["challenger"]["confident_mistakes"]
    assert Path(evaluated["confusion_matrix_uri"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _when_checkpointed(root: Path, key: str, action: Any) -> threading.Thread:
    """Run ``action`` once the run's first checkpoint exists (from a helper thread)."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while not list((root / "checkpoints" / key).glob("checkpoint-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_execution_timeout_stops_train_py_and_the_retry_resumes(data_root: Path, shared: dict[str, Path]) -> None:
    import signal

    from airflow.sdk.exceptions import AirflowTaskTimeout
    from airflow.sdk.execution_time.timeout import timeout

    hyper = {**TINY, "model_name_or_path": str(shared["tiny"]), "epochs": 3, "checkpoint_steps": 2}
    hyper["early_stopping_patience"] = 0
    operator = ops.TrainModelOperator(task_id="train", hyperparameters=hyper)
    # The Airflow task runner's timeout is a SIGALRM; fire it as soon as a checkpoint exists.
    watcher = _when_checkpointed(data_root, "run-1", lambda: signal.setitimer(signal.ITIMER_REAL, 0.01))
    with pytest.raises(AirflowTaskTimeout), timeout(600):
        operator.execute(context("run-1"))
    watcher.join()
    assert operator._process is not None and operator._process.poll() == 143  # checkpointed, then exited
    assert not (data_root / "models/run-1").exists()

    result = ops.TrainModelOperator(task_id="train", hyperparameters=hyper).execute(context("run-1"))
    metrics = json.loads((data_root / "models/run-1/metrics.json").read_text())
    assert metrics["training"]["resumed_from_step"] >= 2
    assert result["global_step"] == metrics["training"]["global_step"] == 3 * 13


def test_on_kill_stops_the_subprocess(data_root: Path, shared: dict[str, Path]) -> None:
    from airflow.sdk.exceptions import AirflowException

    hyper = {**TINY, "model_name_or_path": str(shared["tiny"]), "epochs": 8, "checkpoint_steps": 1}
    operator = ops.TrainModelOperator(task_id="train", hyperparameters=hyper)
    watcher = _when_checkpointed(data_root, "run-0", operator.on_kill)
    with pytest.raises(AirflowException, match="exited with code 143"):
        operator.execute(context("run-0"))
    watcher.join()


@pytest.mark.reliability
def test_train_py_killed_with_sigkill_fails_the_task_naming_the_signal(
    data_root: Path, shared: dict[str, Path], reliability: ReliabilityRecord
) -> None:
    """What the OOM killer or a kill -9 does: the try fails (and pages, and is retried), never a success."""
    reliability.section, reliability.case = "Kills", "train task: kill -9 of train.py after its first checkpoint"
    reliability.path = "LocalTrainModelOperator (train.py in a subprocess)"
    reliability.tried = "SIGKILL train.py while the task waits for it"
    import os
    import signal

    from airflow.sdk.exceptions import AirflowException

    hyper = {**TINY, "model_name_or_path": str(shared["tiny"]), "epochs": 8, "checkpoint_steps": 1}
    operator = ops.TrainModelOperator(task_id="train", hyperparameters=hyper)
    watcher = _when_checkpointed(data_root, "run-0", lambda: os.kill(operator._process.pid, signal.SIGKILL))
    with pytest.raises(AirflowException, match="train.py was killed by signal SIGKILL") as failed:
        operator.execute(context("run-0"))
    watcher.join()
    assert not (data_root / "models/run-0").exists()
    assert list((data_root / "checkpoints/run-0").glob("checkpoint-*"))  # what the retry resumes from
    reliability.outcome = (
        f"the try failed ({str(failed.value).splitlines()[0]}), so it pages and is retried; no model committed, "
        "the run's checkpoints kept for the retry"
    )



def test_features_train_py_cannot_use_fail_the_task_without_retry(data_root: Path, shared: dict[str, Path]) -> None:
    """train.py's InputError (here: rows longer than the max_seq_length param) is a verdict about the input."""
    from airflow.sdk import RetryAction

    from include.errors import BadInputError
    from reviewflow.dag_defaults import FAIL_ON_BAD_INPUT

    hyper = {**TINY, "model_name_or_path": str(shared["tiny"]), "max_seq_length": 16}
    expected = r"^train.py cannot use its input: .*/features/run-0/train: a row has \d+ tokens, more than --max_seq_length 16$"
    with pytest.raises(BadInputError, match=expected) as failed:
        ops.TrainModelOperator(task_id="train", hyperparameters=hyper).execute(context("run-0"))
    assert FAIL_ON_BAD_INPUT.evaluate(failed.value, 1, 3).action == RetryAction.FAIL
    assert not (data_root / "models/run-0").exists()


def test_missing_features_name_the_manifest(data_root: Path) -> None:
    from airflow.sdk.exceptions import AirflowException

    with pytest.raises(AirflowException, match=r"features/run-9/manifest.json does not exist"):
        ops.TrainModelOperator(task_id="train").execute(context("run-9"))


# ---------------------------------------------------------------- SageMaker, with moto


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, shared: dict[str, Path]) -> Any:
    monkeypatch.setenv("REVIEWFLOW_BACKEND", "aws")
    monkeypatch.setenv("REVIEWFLOW_DATA_ROOT", "s3://lake/reviewflow")
    settings = AwsSettings(
        aws_conn_id=AWS_CONN_ID, athena_database="d", athena_workgroup="w", athena_output_location="s3://lake/a",
        sagemaker_role_arn="arn:aws:iam::123456789012:role/sagemaker", processing_instance_type="ml.m5.xlarge",
        training_instance_type="ml.g5.xlarge", emr_application_id=None, emr_execution_role_arn=None,
    )
    monkeypatch.setattr(ops, "load_aws_settings", lambda _settings: settings)
    with aws_connection(monkeypatch, "eu-west-1"):
        import boto3

        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for path in shared["features"].rglob("*"):
            if path.is_file():
                key = f"reviewflow/features/run-1/{path.relative_to(shared['features'])}"
                s3.put_object(Bucket="lake", Key=key, Body=path.read_bytes())
        yield SimpleNamespace(s3=s3, sm=boto3.client("sagemaker", region_name="eu-west-1"))


def _put_job_outputs(s3: Any, job_name: str, model: bytes = b"") -> None:
    """What SageMaker uploads when train.py ends: output.tar.gz with metrics and plots, model.tar.gz."""
    metrics = {"training": {"global_step": 40, "samples_per_second": 300.0, "stopped_early": False},
               "test": {"macro_f1": 0.8, "accuracy": 0.9}, "validation": {"macro_f1": 0.7}}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("metrics.json", json.dumps(metrics).encode()), ("plots/loss_curves.png", b"\x89PNG")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    prefix = f"reviewflow/models/run-1/sagemaker/{job_name}/output"
    s3.put_object(Bucket="lake", Key=f"{prefix}/output.tar.gz", Body=buffer.getvalue())
    s3.put_object(Bucket="lake", Key=f"{prefix}/model.tar.gz", Body=model)


def _operator(**kwargs: Any) -> ops.SageMakerTrainModelOperator:
    return ops.TrainModelOperator(
        task_id="train", print_log=False, check_interval=0, hyperparameters={"epochs": 2}, aws_conn_id=AWS_CONN_ID, **kwargs
    )  # type: ignore[return-value]


def test_sagemaker_job_is_created_from_settings(aws: Any) -> None:
    from include.training.jobs import training_job_name

    name = training_job_name("run-1")
    _put_job_outputs(aws.s3, name)
    operator = _operator(use_spot=True, max_wait_seconds=4 * 3600)
    result = operator.execute(context("run-1"))

    job = aws.sm.describe_training_job(TrainingJobName=name)
    assert job["AlgorithmSpecification"]["TrainingImage"].startswith(
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-training:"
    )
    assert job["RoleArn"] == "arn:aws:iam::123456789012:role/sagemaker"
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert job["HyperParameters"]["sagemaker_program"] == '"train.py"' and job["HyperParameters"]["epochs"] == '"2"'
    assert job["CheckpointConfig"]["S3Uri"] == "s3://lake/reviewflow/checkpoints/run-1/"
    assert job["EnableManagedSpotTraining"] is True and job["StoppingCondition"]["MaxWaitTimeInSeconds"] == 4 * 3600
    source = aws.s3.get_object(Bucket="lake", Key="reviewflow/code/run-1/sourcedir.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(source)) as tar:
        assert "train.py" in tar.getnames()

    assert result["training_job_name"] == name and result["test_macro_f1"] == 0.8
    assert result["model_uri"] == f"s3://lake/reviewflow/models/run-1/sagemaker/{name}/output/model.tar.gz"
    copied = aws.s3.get_object(Bucket="lake", Key="reviewflow/models/run-1/metrics.json")["Body"].read()
    assert json.loads(copied)["test"]["macro_f1"] == 0.8
    summary_body = aws.s3.get_object(Bucket="lake", Key="reviewflow/reports/run-1/summary.json")["Body"].read()
    assert json.loads(summary_body)["training"]["training_job_name"] == name


def test_sagemaker_retry_reattaches_instead_of_starting_a_second_job(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.sagemaker.models import sagemaker_backends

    from include.training.jobs import training_job_name

    name = training_job_name("run-1")
    _put_job_outputs(aws.s3, name)
    _operator().execute(context("run-1"))
    job = sagemaker_backends["123456789012"]["eu-west-1"].training_jobs[name]
    job.training_job_status = "InProgress"  # the worker died while the job was running

    waited: list[str] = []

    def wait(self: Any, job_name: str, *args: Any) -> None:
        waited.append(job_name)
        job.training_job_status = "Completed"

    monkeypatch.setattr(type(_operator().hook), "check_training_status_with_log", wait)
    result = _operator().execute(context("run-1"))
    assert waited == [name] and result["training_job_name"] == name
    assert [j["TrainingJobName"] for j in aws.sm.list_training_jobs()["TrainingJobSummaries"]] == [name]


def test_sagemaker_retry_after_a_failed_job_starts_the_next_attempt(aws: Any) -> None:
    from moto.sagemaker.models import sagemaker_backends

    from include.training.jobs import training_job_name

    first, second = training_job_name("run-1"), training_job_name("run-1", 1)
    _put_job_outputs(aws.s3, first)
    _put_job_outputs(aws.s3, second)
    _operator().execute(context("run-1"))
    sagemaker_backends["123456789012"]["eu-west-1"].training_jobs[first].training_job_status = "Failed"
    result = _operator().execute(context("run-1"))
    assert result["training_job_name"] == second
    again = _operator().execute(context("run-1"))  # a further retry attaches to the completed second job
    assert again["training_job_name"] == second
    assert sorted(j["TrainingJobName"] for j in aws.sm.list_training_jobs()["TrainingJobSummaries"]) == [first, second]


def test_evaluation_on_aws_fetches_the_model_and_test_split(aws: Any, model_tarball: bytes, shared: dict[str, Path]) -> None:
    from include.training.evaluate import score_model
    from include.training.jobs import training_job_name

    _put_job_outputs(aws.s3, training_job_name("run-1"), model_tarball)
    _operator().execute(context("run-1"))
    result = ops.EvaluateModelsOperator(task_id="evaluate", aws_conn_id=AWS_CONN_ID).execute(context("run-1"))

    assert result["evaluation_uri"] == "s3://lake/reviewflow/models/run-1/evaluation.json"
    stored = json.loads(aws.s3.get_object(Bucket="lake", Key="reviewflow/models/run-1/evaluation.json")["Body"].read())
    assert stored["champion"] is None and stored["test_dir"] == "s3://lake/reviewflow/features/run-1/test"
    with tarfile.open(fileobj=io.BytesIO(model_tarball)) as tar, tempfile.TemporaryDirectory() as tmp:
        tar.extractall(tmp, filter="data")
        local = score_model(Path(tmp), shared["features"] / "test").metrics
    assert stored["challenger"]["confusion_matrix"] == local["confusion_matrix"]
    assert result["challenger_macro_f1"] == pytest.approx(local["macro_f1"])
    png = aws.s3.get_object(Bucket="lake", Key="reviewflow/models/run-1/evaluation/confusion_matrix.png")["Body"].read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and result["confusion_matrix_uri"].endswith("evaluation/confusion_matrix.png")
