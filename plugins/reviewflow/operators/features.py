"""Build the training features: the Spark job of :mod:`include.features.job` on local Spark or EMR Serverless."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from include.config import REPO_ROOT, Settings, load_settings
from include.lineage_datasets import storage_dataset
from include.spark_jobs import code_bundle
from include.uris import join_uri
from reviewflow.caching import DEFAULT_EXPIRE_AFTER, StepCache, snapshot_fingerprint
from reviewflow.operators.base import AWS_TEMPLATE_FIELDS
from reviewflow.operators.spark_job import SparkJobOperator
from reviewflow.run_summary import update_run_summary
from reviewflow.runs import run_key
from reviewflow.settings import load_aws_settings

if TYPE_CHECKING:
    from include.config import AwsSettings
    from include.features.job import FeatureParams

# What the feature job runs: its package and the modules it ships with (code_bundle), so an edit re-runs it.
FEATURES_CODE = (
    REPO_ROOT / "include" / "features",
    REPO_ROOT / "include" / "hadoop_fs.py",
    REPO_ROOT / "include" / "spark.py",
)
# FeatureParams fields that name places, not what the features are.
FEATURE_LOCATIONS = ("snapshot_uri", "output_uri", "run_key", "feature_store_uri")


def python_env_archive_uri(data_root: str) -> str:
    """``<data root>/code/pyspark_env.tar.gz``: the packed Python environment of the EMR Serverless job
    (built and uploaded by ``make pyspark-env``, ``scripts/pack_pyspark_env.py``)."""
    return join_uri(data_root, "code", "pyspark_env.tar.gz")


class BuildFeaturesOperator(SparkJobOperator):
    """Turn a curated snapshot into ``<data_root>/features/<run_key>/`` (splits, manifest, scaler).

    ``local`` backend: the job runs in-process on a local SparkSession. ``aws`` backend: the job script is
    submitted to EMR Serverless (:class:`~reviewflow.operators.spark_job.SparkJobOperator`, with the packed
    Python environment) and the task defers until it finishes. The job run is named after the DAG run, and a retry
    reconnects to a submitted, running or succeeded job of the same run instead of starting a second one.

    :param snapshot_uri: curated snapshot folder (``.../curated/reviews/snapshot=<id>``) (templated).
    :param categories: product categories to use, ``None`` for all (templated).
    :param balance: ``downsample`` or ``none`` (class weights for training) (templated).
    :param max_seq_length: token ids per review after truncation (templated).
    :param truncation: ``head_tail`` or ``head``: which ids a long review keeps (templated).
    :param eval_floor: minimum rows per class in the test and validation splits, taken before
        balancing; 0 for none (templated).
    :param seed: seed of downsampling (templated).
    :param force: (local) recompute even when features with the same fingerprint (snapshot content,
        these params, the job's code) are committed (templated).
    :param cache_expire_after: (local) ISO 8601 duration after which committed features are not
        reused (``P30D``; empty: never) (templated).
    :param python_env_archive_uri: (aws) packed virtualenv for EMR Serverless with the job's dependencies
        (``include/features/requirements-emr.txt``), default ``<data_root>/code/pyspark_env.tar.gz``,
        which ``make pyspark-env`` builds and uploads.
    :param waiter_delay: (aws) seconds between job status polls.
    :param waiter_max_attempts: (aws) polls before giving up.
    :param aws_conn_id: the connection of every AWS call: the EMR job, the code, features and run summary on S3. (templated)
    :param region_name: their region; ``None``: the connection's. (templated)
    :returns: ``{"features_uri", "manifest_uri", "rows": {split: n}, "cache": {"status", "reason", "fingerprint", "from_run"}}``.
    """

    template_fields: Sequence[str] = (
        *AWS_TEMPLATE_FIELDS, "snapshot_uri", "categories", "balance", "max_seq_length", "truncation", "eval_floor", "seed", "force",
        "cache_expire_after",
    )
    job_package = "features"
    job_label = "the feature job"

    def __init__(
        self,
        *,
        snapshot_uri: str,
        categories: Sequence[str] | None = None,
        balance: str = "downsample",
        max_seq_length: int = 64,
        truncation: str = "head_tail",
        eval_floor: int = 30,
        seed: int = 42,
        force: bool = False,
        cache_expire_after: str | None = DEFAULT_EXPIRE_AFTER,
        python_env_archive_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.snapshot_uri = snapshot_uri
        self.categories = categories
        self.balance = balance
        self.max_seq_length = max_seq_length
        self.truncation = truncation
        self.eval_floor = eval_floor
        self.seed = seed
        self.force = force
        self.cache_expire_after = cache_expire_after
        self.python_env_archive_uri = python_env_archive_uri

    def _params(self, settings: Settings, key: str) -> FeatureParams:
        from include.features.job import FeatureParams

        return FeatureParams(
            snapshot_uri=self.snapshot_uri,
            output_uri=join_uri(settings.data_root, "features", key),
            run_key=key,
            categories=None if self.categories is None else tuple(self.categories),
            balance=self.balance,  # type: ignore[arg-type]
            max_seq_length=self.max_seq_length,
            truncation=self.truncation,  # type: ignore[arg-type]
            eval_floor=self.eval_floor,
            seed=self.seed,
            feature_store_uri=join_uri(settings.data_root, "feature_store", "reviews"),
        )

    def execute(self, context: Any) -> dict[str, Any]:
        settings = load_settings()
        key = run_key(context)
        params = self._params(settings, key)
        if settings.backend == "local":
            return self._run_local(context, settings, key, params)
        return self._submit(context, settings, load_aws_settings(settings), params)

    def _run_local(self, context: Any, settings: Settings, key: str, params: FeatureParams) -> dict[str, Any]:
        """Reuse committed features with the same fingerprint, or run the job on the local SparkSession."""
        from dataclasses import asdict

        from include.features.job import build_features

        cache = StepCache(settings, "features", params.output_uri, key, **self.aws_connection)
        decision = cache.decide(
            {"snapshot": snapshot_fingerprint(params.snapshot_uri, **self.aws_connection)},
            {name: value for name, value in asdict(params).items() if name not in FEATURE_LOCATIONS},
            FEATURES_CODE,
            force=self.force,
            expire_after=self.cache_expire_after,
        )
        cache.run(decision, lambda: build_features(_local_session(), params))
        return cache.record("features", self.finish(context, settings, key, self.read_output(settings, key)), decision)

    def _submit(self, context: Any, settings: Settings, aws: AwsSettings, params: FeatureParams) -> NoReturn:
        archive = self.python_env_archive_uri or python_env_archive_uri(settings.data_root)
        python = "./environment/bin/python"
        return self.submit(
            context, settings, aws, self._arguments(params), compute="emr",
            spark_conf={
                "spark.archives": f"{archive}#environment",
                "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": python,
                "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": python,
                "spark.executorEnv.PYSPARK_PYTHON": python,
                "spark.executorEnv.HF_HUB_OFFLINE": "1",
            },
        )

    @staticmethod
    def _arguments(params: FeatureParams) -> list[str]:
        """The job's command line (see ``python -m include.features.job --help``)."""
        arguments = [
            "--snapshot-uri", params.snapshot_uri,
            "--output-uri", params.output_uri,
            "--run-key", params.run_key,
            "--feature-store-uri", params.feature_store_uri or "",
            "--balance", params.balance,
            "--max-seq-length", str(params.max_seq_length),
            "--truncation", params.truncation,
            "--eval-floor", str(params.eval_floor),
            "--seed", str(params.seed),
        ]  # fmt: skip
        if params.categories is not None:
            arguments += ["--categories", ",".join(params.categories)]
        return arguments

    def output_uri(self, settings: Settings, key: str) -> str:
        return join_uri(settings.data_root, "features", key, "manifest.json")

    def finish(self, context: Any, settings: Settings, key: str, manifest: dict[str, Any]) -> dict[str, Any]:
        features_uri = join_uri(settings.data_root, "features", key)
        result = {
            "features_uri": features_uri,
            "manifest_uri": join_uri(features_uri, "manifest.json"),
            "rows": {split: counts["rows"] for split, counts in manifest["splits"].items()},
        }
        summary_keys = (
            "splits", "class_weights", "balance", "max_seq_length", "truncation", "truncation_rate", "absent_labels",
            "eval_floor", "tokenizer", "feature_store",
        )
        update_run_summary(
            settings, key, "features", {**result, **{k: manifest[k] for k in summary_keys if k in manifest}},
            **self.aws_connection,
        )
        self.report_lineage([storage_dataset(self.snapshot_uri)], [storage_dataset(features_uri)])
        return result


def _local_session() -> Any:
    """The local SparkSession, with the ``include.features`` package shipped to its Python workers.

    Workers do not inherit the task's ``sys.path``, so (as ``spark.submit.pyFiles`` does on EMR) the
    package goes to them as a zip, named by content so a second task in the same process adds nothing.
    """
    from include.spark import local_spark_session

    spark = local_spark_session("reviewflow-features")
    bundle = code_bundle(("features", "hadoop_fs"))
    path = Path(tempfile.gettempdir()) / f"reviewflow-features-{hashlib.sha256(bundle).hexdigest()[:16]}.zip"
    if not path.exists():
        path.write_bytes(bundle)
    spark.sparkContext.addPyFile(str(path))
    return spark
