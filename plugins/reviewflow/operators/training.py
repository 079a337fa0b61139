"""Fine-tune the sentiment model (train.py locally or as a SageMaker training job) and evaluate it.

``TrainModelOperator(...)`` is a factory: with ``REVIEWFLOW_BACKEND=local`` it returns a
:class:`LocalTrainModelOperator` (train.py in a subprocess with the SageMaker ``SM_*`` layout),
with ``aws`` a :class:`SageMakerTrainModelOperator`, a subclass of the provider's
``SageMakerTrainingOperator`` that builds its config at run time (AWS settings are Airflow
Variables, readable only inside a task) and re-attaches to the run's job on a retry.
Choosing the class once, at DAG build time, keeps each operator single-purpose and lets the
aws path inherit the provider's create/wait/log/defer logic unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from include.atomic import replace_directory
from include.config import REPO_ROOT, load_settings
from include.errors import BadInputError
from include.lineage_datasets import storage_dataset
from include.registry.base import DEFAULT_MODEL_NAME
from include.uris import join_uri, local_path
from reviewflow.backends import storage_for
from reviewflow.caching import DEFAULT_EXPIRE_AFTER, StepCache, sealed_fingerprint
from reviewflow.lineage import ReportsLineage
from reviewflow.metrics import emit_test_macro_f1
from reviewflow.operators.base import AWS_TEMPLATE_FIELDS, AwsConnectedOperator
from reviewflow.run_summary import read_run_summary, run_summary_uri, update_run_summary
from reviewflow.runs import run_key
from reviewflow.settings import load_aws_settings

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.config import Settings
    from include.training.jobs import LocalLayout

TERMINATE_GRACE_SECONDS = 30
# Describe states of an existing job of this run: attach to a live or finished one, replace a dead one.
ATTACH_STATES = {"InProgress", "Stopping", "Completed"}
# The evaluation's outputs beside the model (the training output is the rest of models/<run key>/).
EVALUATION_FILES = ("evaluation.json", "evaluation/confusion_matrix.png")
# What the evaluation runs (evaluate.py and the training package's model and metrics): an edit re-scores.
EVALUATION_CODE = (
    REPO_ROOT / "include" / "training" / "evaluate.py",
    REPO_ROOT / "include" / "training" / "sourcedir" / "finetune",
)


def _models_uri(settings: Settings, key: str) -> str:
    return join_uri(settings.data_root, "models", key)


def _manifest(settings: Settings, key: str, *, aws_conn_id: str | None, region_name: str | None) -> dict[str, Any]:
    from include.training.jobs import read_manifest

    uri = join_uri(settings.data_root, "features", key, "manifest.json")
    storage = storage_for(uri, aws_conn_id, region_name=region_name)
    if not storage.exists(uri):
        raise AirflowException(f"{uri} does not exist: run the features task of run {key} first")
    return read_manifest(storage.read_bytes(uri), uri)


def training_result(settings: Settings, key: str, model_uri: str, metrics: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The small dict a training task returns as XCom and writes to the run summary's ``training`` section."""
    models = _models_uri(settings, key)
    test = metrics.get("test") or {}
    return {
        "model_uri": model_uri,
        "metrics_uri": join_uri(models, "metrics.json"),
        "plots_uri": join_uri(models, "plots"),
        "test_macro_f1": test.get("macro_f1"),
        "test_accuracy": test.get("accuracy"),
        "validation_macro_f1": (metrics.get("validation") or {}).get("macro_f1"),
        "global_step": metrics["training"]["global_step"],
        "samples_per_second": metrics["training"]["samples_per_second"],
        "stopped_early": metrics["training"]["stopped_early"],
        **extra,
    }



class TrainingInputError(BadInputError):
    """train.py refused the features with these hyperparameters (an ``InputError``: e.g. token ids outside
    the encoder's vocabulary); a retry on the same input fails the same way."""


class LocalTrainModelOperator(ReportsLineage, BaseOperator):
    """Run ``include/training/sourcedir/train.py`` in a subprocess laid out like a SageMaker training container.

    Channels are ``<data_root>/features/<run_key>/{train,validation,test}``; the job writes into a
    staging folder that is renamed to ``<data_root>/models/<run_key>`` when it succeeds.
    Checkpoints live in ``<data_root>/checkpoints/<run_key>`` until then, so a retry resumes.
    A committed model with the same fingerprint (the features' seal, the hyperparameters, the bytes of
    every file of the ``source_dir``) is copied instead of training again.  It runs on the ``local`` backend only,
    so it makes no AWS call and takes no connection.

    :param hyperparameters: train.py arguments (``{"epochs": 2}``) over those taken from the manifest (templated).
    :param force: train even when a model with the same fingerprint is committed (templated).
    :param cache_expire_after: ISO 8601 duration after which a committed model is not reused
        (``P30D``; empty: never) (templated).
    """

    template_fields = ("hyperparameters", "force", "cache_expire_after")
    template_fields_renderers = {"hyperparameters": "json"}
    ui_color = "#f4d6a0"

    def __init__(
        self,
        *,
        hyperparameters: Mapping[str, Any] | None = None,
        force: bool = False,
        cache_expire_after: str | None = DEFAULT_EXPIRE_AFTER,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hyperparameters = dict(hyperparameters or {})
        self.force = force
        self.cache_expire_after = cache_expire_after
        self._process: subprocess.Popen[str] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from include.training.jobs import LocalLayout, cli_arguments, job_hyperparameters, source_files

        settings = load_settings()
        key = run_key(context)
        layout = LocalLayout.for_run(local_path(settings.data_root), key)
        hyperparameters = job_hyperparameters(_manifest(settings, key, aws_conn_id=None, region_name=None), self.hyperparameters)
        cache = StepCache(settings, "training", str(layout.final), key, aws_conn_id=None)
        decision = cache.decide(
            {"features": sealed_fingerprint("features", str(layout.features), aws_conn_id=None)},
            hyperparameters,
            source_files(),
            force=self.force,
            expire_after=self.cache_expire_after,
        )
        cache.run(decision, lambda: self._train(layout, cli_arguments(hyperparameters)))
        metrics = json.loads((layout.final / "metrics.json").read_text())
        result = training_result(settings, key, str(layout.final / "model"), metrics, backend="local")
        update_run_summary(settings, key, "training", result, aws_conn_id=None)
        self.report_lineage([storage_dataset(str(layout.features))], [storage_dataset(result["model_uri"])])
        return cache.record("training", result, decision)

    def _train(self, layout: LocalLayout, arguments: list[str]) -> None:
        """Run train.py to the end and commit its output folder (checkpoints let a retry resume)."""
        from include.training.jobs import ENTRY_POINT, EXIT_BAD_INPUT, SOURCE_DIR

        shutil.rmtree(layout.staging, ignore_errors=True)
        layout.staging.mkdir(parents=True)
        env = {**os.environ, **layout.environment(), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, str(SOURCE_DIR / ENTRY_POINT), *arguments]
        self.log.info("running %s", " ".join(command))
        tail: deque[str] = deque(maxlen=20)
        try:
            # Own process group, so on_kill/timeout reach train.py and anything it starts.
            self._process = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
            )
            assert self._process.stdout is not None
            for line in self._process.stdout:
                tail.append(line.rstrip())
                self.log.info("train.py: %s", line.rstrip())
            code = self._process.wait()
        finally:
            self._stop_process()  # execution_timeout raises inside the loop above: never leave train.py running
        if code < 0:  # the kernel's OOM killer or someone's kill -9: never a success, and retried
            raise AirflowException(
                f"train.py was killed by signal {signal.Signals(-code).name} (out of memory, or killed by hand); "
                "last lines:\n" + "\n".join(tail)
            )
        if code == EXIT_BAD_INPUT:
            reason = next((line.split("InputError: ", 1)[1] for line in reversed(tail) if "InputError: " in line), "")
            raise TrainingInputError(f"train.py cannot use its input: {reason or 'see the task log'}")
        if code != 0:
            raise AirflowException(f"train.py exited with code {code}; last lines:\n" + "\n".join(tail))
        replace_directory(layout.staging, layout.final)
        shutil.rmtree(layout.checkpoints, ignore_errors=True)

    def _stop_process(self) -> None:
        """SIGTERM the job's process group (train.py checkpoints and exits), SIGKILL after a grace period."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self.log.warning("stopping train.py (pid %d)", process.pid)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=TERMINATE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def on_kill(self) -> None:
        self._stop_process()


class SageMakerTrainModelOperator(SageMakerTrainingOperator):
    """Run train.py as a SageMaker training job on the Hugging Face PyTorch image.

    The job name derives from the run key.  On a retry an existing job of the run that is running or
    completed is re-attached to instead of starting a second one; after a failed or stopped job a
    new job (``-r<n>``) starts and resumes from the run's S3 checkpoints.

    :param hyperparameters: train.py arguments over those taken from the manifest (templated).
    :param use_spot: managed spot training; ``max_wait_seconds`` then bounds waiting plus running.
    :param aws_conn_id: the connection of every S3 and SageMaker call: required, no ``aws_default`` (templated).
    :param region_name: their region; ``None``: the connection's (templated).
    """

    template_fields = (*SageMakerTrainingOperator.template_fields, "hyperparameters")
    template_fields_renderers = {**SageMakerTrainingOperator.template_fields_renderers, "hyperparameters": "json"}

    def __init__(
        self,
        *,
        aws_conn_id: str | None,
        hyperparameters: Mapping[str, Any] | None = None,
        use_spot: bool = False,
        max_run_seconds: int = 3 * 3600,
        max_wait_seconds: int | None = None,
        instance_count: int = 1,
        volume_size_gb: int = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(config={}, check_if_job_exists=False, aws_conn_id=aws_conn_id, **kwargs)
        self.hyperparameters = dict(hyperparameters or {})
        self.use_spot = use_spot
        self.max_run_seconds = max_run_seconds
        self.max_wait_seconds = max_wait_seconds
        self.instance_count = instance_count
        self.volume_size_gb = volume_size_gb

    def build_config(self, context: Context, job_name: str) -> dict[str, Any]:
        """Upload the source tarball and return the ``CreateTrainingJob`` request for this run."""
        from include.training.jobs import (
            SageMakerJobSpec,
            huggingface_training_image_uri,
            job_hyperparameters,
            sagemaker_training_config,
            source_tarball,
        )

        settings = load_settings()
        aws = load_aws_settings(settings)
        if not aws.sagemaker_role_arn:
            raise AirflowException("Airflow Variable reviewflow_sagemaker_role_arn is required to train on SageMaker")
        key = run_key(context)
        region = self.region_name or self.hook.conn_region_name
        source_uri = join_uri(settings.data_root, "code", key, "sourcedir.tar.gz")
        storage_for(source_uri, self.aws_conn_id, region_name=self.region_name).write_bytes(source_uri, source_tarball())
        spec = SageMakerJobSpec(
            job_name=job_name,
            image_uri=huggingface_training_image_uri(region, aws.training_instance_type),
            role_arn=aws.sagemaker_role_arn,
            region=region,
            instance_type=aws.training_instance_type,
            features_uri=join_uri(settings.data_root, "features", key),
            output_uri=join_uri(_models_uri(settings, key), "sagemaker") + "/",
            checkpoint_uri=join_uri(settings.data_root, "checkpoints", key) + "/",
            source_uri=source_uri,
            hyperparameters=job_hyperparameters(
                _manifest(settings, key, aws_conn_id=self.aws_conn_id, region_name=self.region_name), self.hyperparameters
            ),
            instance_count=self.instance_count,
            volume_size_gb=self.volume_size_gb,
            max_run_seconds=self.max_run_seconds,
            use_spot=self.use_spot,
            max_wait_seconds=self.max_wait_seconds,
        )
        return sagemaker_training_config(spec)

    def latest_job(self, context: Context) -> tuple[int, dict[str, Any] | None]:
        """The newest job of this run (``attempt``, description) or ``(0, None)`` if none exists."""
        from botocore.exceptions import ClientError

        from include.training.jobs import training_job_name

        attempt, found = 0, None
        while True:
            try:
                description = self.hook.describe_training_job(training_job_name(run_key(context), attempt))
            except ClientError as error:
                if error.response["Error"]["Code"] != "ValidationException":
                    raise
                return max(attempt - 1, 0), found
            attempt, found = attempt + 1, description

    def execute(self, context: Context) -> dict[str, Any]:
        from include.training.jobs import training_job_name

        key = run_key(context)
        attempt, existing = self.latest_job(context)
        if existing is not None and existing["TrainingJobStatus"] in ATTACH_STATES:
            return self.attach(context, existing)
        if existing is not None:
            self.log.info("job %s is %s: starting a new one", existing["TrainingJobName"], existing["TrainingJobStatus"])
            attempt += 1
        self.config = self.build_config(context, training_job_name(key, attempt))
        result = super().execute(context)
        return self.publish(context, result["Training"])

    def attach(self, context: Context, description: dict[str, Any]) -> dict[str, Any]:
        """Follow an existing job of this run to its end instead of starting another."""
        name = description["TrainingJobName"]
        self.log.info("re-attaching to training job %s (%s)", name, description["TrainingJobStatus"])
        self.config = {"TrainingJobName": name}
        if description["TrainingJobStatus"] != "Completed":
            if self.deferrable and self.wait_for_completion:
                from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

                # As the provider's own execute defers (same region, TLS and botocore settings, timeout).
                self.defer(
                    timeout=dt.timedelta(seconds=self.max_ingestion_time) if self.max_ingestion_time else self.execution_timeout,
                    trigger=SageMakerTrigger(
                        job_name=name, job_type="Training", waiter_delay=self.check_interval,
                        waiter_max_attempts=self.max_attempts, aws_conn_id=self.aws_conn_id,
                        region_name=self.region_name, verify=self.verify, botocore_config=self.botocore_config,
                    ),
                    method_name="execute_complete",
                )
            self.hook.check_training_status_with_log(
                name, self.hook.non_terminal_states, self.hook.training_failed_states,
                self.wait_for_completion, self.check_interval, self.max_ingestion_time,
            )
        return self.publish(context, self.serialize_result(name)["Training"])

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.publish(context, super().execute_complete(context, event)["Training"])

    def publish(self, context: Context, description: Mapping[str, Any]) -> dict[str, Any]:
        """Copy metrics and plots from the job's ``output.tar.gz`` next to the model; update the run summary."""
        from include.training.jobs import extract_outputs

        if description.get("TrainingJobStatus") != "Completed":
            raise AirflowException(
                f"training job {description.get('TrainingJobName')} is {description.get('TrainingJobStatus')}: "
                f"{description.get('FailureReason', 'no reason given')}"
            )
        settings = load_settings()
        key = run_key(context)
        model_uri = description["ModelArtifacts"]["S3ModelArtifacts"]
        output_uri = model_uri.rsplit("/", 1)[0] + "/output.tar.gz"
        storage = storage_for(output_uri, self.aws_conn_id, region_name=self.region_name)
        files = extract_outputs(storage.read_bytes(output_uri))
        if "metrics.json" not in files:
            raise AirflowException(f"{output_uri} holds no metrics.json: train.py did not finish its outputs")
        models = _models_uri(settings, key)
        for name, data in sorted(files.items()):
            storage.write_bytes(join_uri(models, name), data)
        metrics = json.loads(files["metrics.json"])
        result = training_result(
            settings, key, model_uri, metrics, backend="aws", training_job_name=description["TrainingJobName"]
        )
        update_run_summary(settings, key, "training", result, self.aws_conn_id, region_name=self.region_name)
        return result


def TrainModelOperator(*, backend: str | None = None, **kwargs: Any) -> BaseOperator:  # noqa: N802 - reads as a class
    """The training operator for ``backend`` (default: ``REVIEWFLOW_BACKEND``); same keyword arguments."""
    chosen = backend or load_settings().backend
    if chosen == "aws":
        # Step caching needs the curated snapshot's content fingerprint, which the Athena ingestion does not write yet.
        for local_only in ("force", "cache_expire_after"):
            kwargs.pop(local_only, None)
        return SageMakerTrainModelOperator(**kwargs)
    for aws_only in ("aws_conn_id", "region_name", "use_spot", "max_run_seconds", "max_wait_seconds", "instance_count",
                     "volume_size_gb"):
        kwargs.pop(aws_only, None)
    return LocalTrainModelOperator(**kwargs)


class EvaluateModelsOperator(AwsConnectedOperator):
    """Score this run's model and the current champion on the run's test split; write the comparison.

    The model is the ``model_uri`` of the run summary's ``training`` section (a local folder or a
    SageMaker ``model.tar.gz``, fetched to the worker); the champion is the model registry's
    ``champion`` version (MLflow alias, or SageMaker model package), fetched the same way.
    Writes ``<data_root>/models/<run_key>/evaluation.json`` (both models' metrics, the challenger's
    per-class and per-category F1 and most confident mistakes, the paired bootstrap interval of the
    macro-F1 delta), ``evaluation/confusion_matrix.png`` and the run summary's ``evaluation`` section;
    returns ``{"evaluation_uri", "confusion_matrix_uri", "test_rows", "challenger_macro_f1",
    "champion_macro_f1", "delta_macro_f1", "delta_macro_f1_ci95", "challenger_wins", "cache"}``.
    A committed evaluation with the same fingerprint (the model's and the features' seals, the champion
    version, the batch size, the scoring code) is copied instead of scoring again.

    :param batch_size: rows per inference batch.
    :param aws_conn_id: the connection of every S3 and SageMaker call (templated).
    :param region_name: their region; ``None``: the connection's (templated).
    :param force: score even when an evaluation with the same fingerprint is committed (templated).
    :param cache_expire_after: ISO 8601 duration after which a committed evaluation is not reused
        (``P30D``; empty: never) (templated).
    """

    template_fields = (*AWS_TEMPLATE_FIELDS, "force", "cache_expire_after")
    ui_color = "#d6e4f0"

    def __init__(
        self,
        *,
        batch_size: int = 128,
        force: bool = False,
        cache_expire_after: str | None = DEFAULT_EXPIRE_AFTER,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_size = batch_size
        self.force = force
        self.cache_expire_after = cache_expire_after

    def execute(self, context: Context) -> dict[str, Any]:
        from reviewflow.backends import registry_for

        settings = load_settings()
        key = run_key(context)
        training = (read_run_summary(settings, key, **self.aws_connection) or {}).get("training")
        if not training:
            summary_uri = run_summary_uri(settings, key)
            raise AirflowException(f"{summary_uri} has no 'training' section: run the training task of run {key} first")
        registered = registry_for(settings, DEFAULT_MODEL_NAME, **self.aws_connection).champion()
        champion = registered if registered is not None and registered.run_key != key else None
        models = _models_uri(settings, key)
        features = join_uri(settings.data_root, "features", key)
        cache = StepCache(settings, "evaluation", models, key, files=EVALUATION_FILES, **self.aws_connection)
        decision = cache.decide(
            {
                "model": sealed_fingerprint("training", models, **self.aws_connection),
                "features": sealed_fingerprint("features", features, **self.aws_connection),
            },
            {
                "batch_size": self.batch_size,
                "champion": None if champion is None else {"version": champion.version, "model_uri": champion.model_uri},
            },
            EVALUATION_CODE,
            force=self.force,
            expire_after=self.cache_expire_after,
        )
        cache.run(decision, lambda: self._evaluate(training["model_uri"], join_uri(features, "test"), champion, models))
        uri = join_uri(models, "evaluation.json")
        comparison = self.storage(uri).read_json(uri)
        comparison["confusion_matrix_uri"] = join_uri(models, EVALUATION_FILES[1])
        interval = (comparison["deltas"] or {}).get("macro_f1_ci95")
        result = {
            "evaluation_uri": uri,
            "confusion_matrix_uri": comparison["confusion_matrix_uri"],
            "test_rows": comparison["test_rows"],
            "challenger_macro_f1": comparison["challenger"]["macro_f1"],
            "champion_macro_f1": comparison["champion"]["macro_f1"] if comparison["champion"] else None,
            "delta_macro_f1": comparison["deltas"]["macro_f1"] if comparison["deltas"] else None,
            "delta_macro_f1_ci95": interval,
            "challenger_wins": comparison["challenger_wins"],
        }
        update_run_summary(settings, key, "evaluation", {**comparison, **result}, **self.aws_connection)
        emit_test_macro_f1(context, result["challenger_macro_f1"])
        self.log.info("evaluation: %s", result)
        inputs = [training["model_uri"], join_uri(features, "test"), *([champion.model_uri] if champion else [])]
        self.report_lineage([storage_dataset(uri) for uri in inputs], [storage_dataset(uri)])
        return cache.record("evaluation", result, decision)

    def _evaluate(self, model_uri: str, test_uri: str, champion: Any, models: str) -> None:
        """Score the model (and the champion) and commit ``evaluation/confusion_matrix.png``, then ``evaluation.json``."""
        from include.training.evaluate import evaluate_models
        from reviewflow.artifacts import fetch_model, fetch_split

        with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
            challenger = fetch_model(model_uri, Path(tmp) / "challenger", **self.aws_connection)
            test = fetch_split(test_uri, Path(tmp) / "test", **self.aws_connection)
            champion_dir = (
                None if champion is None else fetch_model(champion.model_uri, Path(tmp) / "champion", **self.aws_connection)
            )
            self.log.info("scoring %s against champion %s on %s", model_uri, champion_dir, test)
            comparison = evaluate_models(challenger, test, champion_dir, self.batch_size, report_dir=Path(tmp) / "report")
            png = Path(comparison["challenger"].pop("confusion_matrix_png"))
            png_uri = join_uri(models, EVALUATION_FILES[1])
            self.storage(png_uri).write_bytes(png_uri, png.read_bytes())
        comparison["challenger_dir"], comparison["test_dir"] = model_uri, test_uri
        comparison["champion_dir"] = None if champion is None else champion.model_uri
        uri = join_uri(models, EVALUATION_FILES[0])
        self.storage(uri).write_json(uri, comparison)
