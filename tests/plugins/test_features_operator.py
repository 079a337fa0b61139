"""BuildFeaturesOperator: local backend in-process, aws backend submitted to (mocked) EMR Serverless."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from include.config import ConfigError
from include.sample_data import SampleSpec, curated_records, generate_rows, write_curated_snapshot
from include.spark_jobs import run_job_name
from reviewflow.operators.features import BuildFeaturesOperator
from tests.conftest import AWS_CONN_ID, aws_connection, task_context

RUN_ID = "manual__2024-05-01T00:00:00+00:00"
RUN_KEY = "manual__2024-05-01T00-00-00-00-00"
BUCKET = "reviewflow-test"
ROLE = "arn:aws:iam::123456789012:role/emr-job"


_context = partial(task_context, "reviews_train", "build_features", RUN_ID)  # _context(try_number)


def _operator(**overrides: Any) -> BuildFeaturesOperator:
    arguments = {
        "task_id": "build_features", "snapshot_uri": "s3://x/curated/reviews/snapshot=s1", "aws_conn_id": AWS_CONN_ID,
        **overrides,
    }
    return BuildFeaturesOperator(**arguments)


def test_template_fields_cover_the_job_parameters() -> None:
    assert set(BuildFeaturesOperator.template_fields) == {
        "snapshot_uri", "categories", "balance", "max_seq_length", "truncation", "eval_floor", "seed", "force",
        "cache_expire_after", "aws_conn_id", "region_name",
    }


def test_local_backend_runs_the_job_and_updates_the_run_summary(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIEWFLOW_BACKEND", "local")
    monkeypatch.setenv("REVIEWFLOW_DATA_ROOT", str(tmp_path))
    snapshot = write_curated_snapshot(tmp_path / "curated" / "reviews" / "snapshot=s1", curated_records(generate_rows(SampleSpec(rows=600, seed=4))))
    result = _operator(snapshot_uri=snapshot, categories=["Books", "Toys", "Home"], max_seq_length=32).execute(_context())

    features = tmp_path / "features" / RUN_KEY
    assert result["features_uri"] == str(features)
    assert result["manifest_uri"] == str(features / "manifest.json")
    manifest = json.loads((features / "manifest.json").read_text())
    assert manifest["categories"] == ["Books", "Toys", "Home"] and manifest["max_seq_length"] == 32
    assert result["rows"] == {split: counts["rows"] for split, counts in manifest["splits"].items()}
    summary = json.loads((tmp_path / "reports" / RUN_KEY / "summary.json").read_text())
    assert summary["features"]["rows"] == result["rows"]
    assert summary["features"]["class_weights"] == manifest["class_weights"]
    assert (tmp_path / "feature_store" / "reviews").is_dir()
    # A snapshot written without the ingestion's manifest has no content fingerprint: nothing to cache by.
    assert result["cache"]["status"] == summary["features"]["cache"]["status"] == "off"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "REVIEWFLOW_BACKEND": "aws", "REVIEWFLOW_DATA_ROOT": f"s3://{BUCKET}/root",
        "AIRFLOW_VAR_REVIEWFLOW_EMR_EXECUTION_ROLE_ARN": ROLE,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with aws_connection(monkeypatch, "us-east-1") as calls:
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        emr = boto3.client("emr-serverless")
        app = emr.create_application(name="reviewflow", releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
        monkeypatch.setenv("AIRFLOW_VAR_REVIEWFLOW_EMR_APPLICATION_ID", app)
        # Another job on the application: it must not be taken for this run's job (and moto lists
        # job runs only once the application has one).
        emr.start_job_run(
            applicationId=app, executionRoleArn=ROLE, name="someone-elses-job", clientToken="other",
            jobDriver={"sparkSubmit": {"entryPoint": "s3://x/other.py"}},
        )  # fmt: skip
        yield SimpleNamespace(emr=emr, s3=boto3.client("s3"), application_id=app, calls=calls)


def _defer(operator: BuildFeaturesOperator, try_number: int) -> Any:
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(_context(try_number))
    return deferred.value


def test_aws_backend_submits_one_emr_serverless_job_per_run(aws: Any) -> None:
    from airflow.providers.amazon.aws.triggers.emr import EmrServerlessStartJobTrigger

    deferred = _defer(_operator(categories=["Books"], balance="none"), try_number=1)
    assert isinstance(deferred.trigger, EmrServerlessStartJobTrigger)
    assert deferred.method_name == "execute_complete"
    runs = _our_runs(aws)
    assert len(runs) == 1
    assert deferred.trigger.job_id == runs[0]["id"]

    job = aws.emr.get_job_run(applicationId=aws.application_id, jobRunId=runs[0]["id"])["jobRun"]
    submit = job["jobDriver"]["sparkSubmit"]
    args = submit["entryPointArguments"]
    assert args[args.index("--output-uri") + 1] == f"s3://{BUCKET}/root/features/{RUN_KEY}"
    assert args[args.index("--categories") + 1] == "Books"
    assert args[args.index("--balance") + 1] == "none"
    assert job["executionRole"] == ROLE
    entry_bucket, _, entry_key = submit["entryPoint"].removeprefix("s3://").partition("/")
    script = aws.s3.get_object(Bucket=entry_bucket, Key=entry_key)["Body"].read()
    assert b"def build_features" in script and b'if __name__ == "__main__":' in script
    assert "spark.submit.pyFiles=s3://" in submit["sparkSubmitParameters"]
    # The packed environment make pyspark-env uploads (scripts/pack_pyspark_env.py), as the EMR docs wire it.
    assert f"--conf spark.archives=s3://{BUCKET}/root/code/pyspark_env.tar.gz#environment" in submit["sparkSubmitParameters"]
    assert "--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python" in submit["sparkSubmitParameters"]

    retried = _defer(_operator(categories=["Books"], balance="none"), try_number=2)
    assert retried.trigger.job_id == runs[0]["id"], "a retry reconnects to the running job"
    assert len(_our_runs(aws)) == 1


def _our_runs(aws: Any) -> list[dict[str, Any]]:
    runs = aws.emr.list_job_runs(applicationId=aws.application_id)["jobRuns"]
    name = run_job_name("reviewflow-features", "reviews_train", RUN_KEY, "build_features")
    return [r for r in runs if r["name"] == name]


def test_on_kill_cancels_the_emr_job_run_of_this_try(aws: Any) -> None:
    operator = _operator()
    deferred = _defer(operator, try_number=1)
    operator.on_kill()
    cancelled = [params for name, params in aws.calls if name == "CancelJobRun"]
    assert cancelled == [{"applicationId": aws.application_id, "jobRunId": deferred.trigger.job_id}]


def test_aws_backend_resumes_from_the_manifest(aws: Any) -> None:
    manifest = {
        "splits": {s: {"rows": n, "per_class": {}} for s, n in (("train", 90), ("validation", 5), ("test", 5), ("replay", 4))},
        "class_weights": {"0": 1.0, "1": 1.0, "2": 1.0}, "max_seq_length": 64, "truncation_rate": 0.0,
    }  # fmt: skip
    aws.s3.put_object(Bucket=BUCKET, Key=f"root/features/{RUN_KEY}/manifest.json", Body=json.dumps(manifest))
    operator = _operator()
    result = operator.execute_complete(_context(), {"status": "success", "job_details": {}})
    assert result == {
        "features_uri": f"s3://{BUCKET}/root/features/{RUN_KEY}",
        "manifest_uri": f"s3://{BUCKET}/root/features/{RUN_KEY}/manifest.json",
        "rows": {"train": 90, "validation": 5, "test": 5, "replay": 4},
    }
    summary = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=f"root/reports/{RUN_KEY}/summary.json")["Body"].read())
    assert summary["features"]["rows"]["train"] == 90
    with pytest.raises(RuntimeError, match="did not succeed"):
        operator.execute_complete(_context(), {"status": "error", "message": "Serverless Job failed"})


def test_aws_backend_without_an_emr_application_fails_clearly(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_VAR_REVIEWFLOW_EMR_APPLICATION_ID")
    with pytest.raises(ConfigError, match="reviewflow_emr_application_id"):
        _operator().execute(_context())
