"""DataQualityGateOperator: the local gate (pass, page on warnings, fail on errors) and the aws
job submission (SageMaker Processing, EMR Serverless) against moto."""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from airflow.providers.amazon.aws.triggers.emr import EmrServerlessStartJobTrigger
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

import reviewflow.operators.quality as quality_module
from include.quality.suite import SuiteError
from include.sample_data import SampleSpec, curated_records, generate_rows, write_curated_snapshot
from reviewflow.operators.quality import DataQualityGateOperator
from tests.conftest import AWS_CONN_ID, made, render_setting, task_context
from tests.plugins.conftest import BUCKET, REGION

RUN_ID = "scheduled__2026-11-26T00:00:00+00:00"
RUN_KEY = "scheduled__2026-11-26T00-00-00-00-00"


context = partial(task_context, "reviews_ingest", "quality_gate", RUN_ID)  # context(try_number=…)


def write_snapshot(root: Path, rows: int = 300, mutate: Any = None) -> str:
    records = curated_records(generate_rows(SampleSpec(rows, seed=5)))
    if mutate:
        mutate(records)
    return write_curated_snapshot(root / "curated" / "reviews" / "snapshot=20261126", records)


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, list[tuple[str, str]]]:
    """The local backend on a temporary data root; ``send_alert`` replaced by a recorder."""
    root = tmp_path / "data"
    monkeypatch.setenv("REVIEWFLOW_BACKEND", "local")
    monkeypatch.setenv("REVIEWFLOW_DATA_ROOT", str(root))
    monkeypatch.setenv("REVIEWFLOW_ALERT_LOG", str(tmp_path / "alerts.jsonl"))
    alerts: list[tuple[str, str]] = []
    monkeypatch.setattr(
        quality_module, "send_alert", lambda settings, title, message, ctx, **_: alerts.append((title, message))
    )
    return root, alerts


def gate(uri: str, **kwargs: Any) -> DataQualityGateOperator:
    return DataQualityGateOperator(
        task_id="quality_gate", curated_uri=uri, engine="auto", aws_conn_id=AWS_CONN_ID, **{"min_rows": 100, **kwargs}
    )


def summary(root: Path) -> dict[str, Any]:
    return json.loads((root / "reports" / RUN_KEY / "summary.json").read_text())


def test_clean_snapshot_passes_and_links_reports(spark, local) -> None:
    root, alerts = local
    result = gate(write_snapshot(root)).execute(context())
    prefix = f"{root}/reports/{RUN_KEY}/quality"
    assert result["report_json"] == f"{prefix}/report.json" and result["report_html"] == f"{prefix}/report.html"
    assert result["error_failures"] == 0 and result["warning_failures"] == 0
    assert result["passed"] == result["total"] and result["engine"] == "spark"
    assert Path(result["report_html"]).exists()
    assert summary(root)["quality"]["gate"] == "passed"
    assert summary(root)["quality"]["report_html"] == result["report_html"]
    assert (root / "quality" / "metrics" / "reviews" / "20261126.json").exists()
    assert alerts == []


def test_auto_without_a_local_deequ_jar_tries_no_download_and_logs_one_line(
    spark, local, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    root, _ = local
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no Ivy/Maven cache
    started: list[Any] = []
    monkeypatch.setattr("include.spark.local_spark_session", lambda name, conf=None: started.append(conf) or spark)
    with caplog.at_level(logging.INFO):
        result = gate(write_snapshot(root)).execute(context())
    assert result["engine"] == "spark"
    assert started == [None]  # no spark.jars.packages: Spark never tries the Maven host
    assert [m for m in caplog.messages if "engine" in m] == [
        "quality engine: spark (requested auto; no Deequ jar configured (REVIEWFLOW_DEEQU_JAR) or in the local "
        "Ivy/Maven caches; no download tried)"
    ]


def test_warning_failures_page_and_the_run_continues(spark, local) -> None:
    root, alerts = local

    def odd_ids(records: list[dict[str, Any]]) -> None:
        for index, record in enumerate(records[:5]):
            record["review_id"] = f"legacy-{index}"  # unique, but not the R… pattern: a Warning

    result = gate(write_snapshot(root, mutate=odd_ids)).execute(context())
    assert result["warning_failures"] == 1 and result["error_failures"] == 0
    assert len(alerts) == 1
    title, message = alerts[0]
    assert "1 warning(s)" in title and "hasPattern(review_id)" in message and result["report_html"] in message
    assert summary(root)["quality"]["failures"] == ["hasPattern(review_id)"]


def test_error_failures_fail_the_task_without_retry(spark, local) -> None:
    root, alerts = local

    def duplicates(records: list[dict[str, Any]]) -> None:
        records[1]["review_id"] = records[0]["review_id"]
        records[2]["star_rating"] = 7

    with pytest.raises(AirflowFailException) as error:
        gate(write_snapshot(root, mutate=duplicates)).execute(context())
    text = str(error.value)
    assert "2 Error-level check(s)" in text and "isUnique(review_id)" in text and "hasMax(star_rating)" in text
    assert "report.html" in text
    assert summary(root)["quality"]["gate"] == "failed"
    assert json.loads((root / "reports" / RUN_KEY / "quality" / "report.json").read_text())["passed"] is False
    assert alerts == []


def test_too_few_rows_fail_naming_the_param_that_sets_the_minimum(spark, local) -> None:
    root, _ = local
    with pytest.raises(AirflowFailException) as error:
        gate(write_snapshot(root), min_rows=1000).execute(context())
    assert "- [Error] hasSize(*): observed 300, expected >= 1000 (param min_rows)." in str(error.value)


def test_invalid_suite_fails_before_spark(local, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = local
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "dataset: reviews\nparams: {min_rows: 1}\ncolumns: {review_id: string}\n"
        "checks:\n  - {check: isFresh, level: Error}\n"
    )
    monkeypatch.setattr("include.quality.job.quality_session", lambda *a: pytest.fail("Spark was started"))
    with pytest.raises(SuiteError, match=r"suite.yaml:5: check #1: unknown check 'isFresh'"):
        gate(str(root / "curated" / "reviews" / "snapshot=x"), suite_path=suite).execute(context())
    with pytest.raises(ValueError, match="engine must be one of"):
        DataQualityGateOperator(task_id="g", curated_uri="x", engine="fast", aws_conn_id=AWS_CONN_ID).execute(context())


def test_a_negative_min_rows_fails_before_any_spark_work(local, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("include.quality.job.quality_session", lambda *a: pytest.fail("Spark was started"))
    with pytest.raises(ValueError, match="min_rows must be >= 0, got -1"):
        DataQualityGateOperator(task_id="g", curated_uri="x", min_rows=-1, aws_conn_id=AWS_CONN_ID).execute(context())
    assert set(DataQualityGateOperator.template_fields) >= {"curated_uri", "suite_path", "engine", "min_rows"}


# --- aws ----------------------------------------------------------------------------------


SNAPSHOT = f"s3://{BUCKET}/reviewflow/curated/reviews/snapshot=20261126"


def test_sagemaker_processing_job_is_submitted_once_per_run(aws) -> None:
    operator = gate(SNAPSHOT, deequ_jar=f"s3://{BUCKET}/jars/deequ-2.0.21-spark-3.5.jar")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, SageMakerTrigger) and trigger.job_type == "processing"
    name = trigger.job_name
    assert name.startswith("reviewflow-quality-") and name.endswith("-1") and len(name) <= 63

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    job = sagemaker.describe_processing_job(ProcessingJobName=name)
    spec = job["AppSpecification"]
    assert spec["ImageUri"].endswith("sagemaker-spark-processing:3.5-cpu")
    entry = spec["ContainerEntrypoint"]
    assert entry[0] == "smspark-submit" and entry[-1] == "/opt/ml/processing/input/code/job.py"
    assert entry[entry.index("--jars") + 1] == "/opt/ml/processing/input/jars"
    args = spec["ContainerArguments"]
    assert args[args.index("--snapshot-uri") + 1] == SNAPSHOT.replace("s3://", "s3a://")
    assert args[args.index("--report-prefix") + 1] == f"s3a://{BUCKET}/reviewflow/reports/{RUN_KEY}/quality"
    assert args[args.index("--metrics-root") + 1] == f"s3a://{BUCKET}/reviewflow/quality/metrics"
    assert args[args.index("--param") + 1] == "min_rows=100"
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in job["ProcessingInputs"]}
    assert inputs["jars"].endswith("deequ-2.0.21-spark-3.5.jar")
    (created,) = [params for operation, params in aws if operation == "CreateProcessingJob"]
    assert created["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.2xlarge"
    assert created["RoleArn"] == "arn:aws:iam::123456789012:role/sm"

    s3 = boto3.client("s3", region_name=REGION)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    code_prefix = inputs["code"].removeprefix(f"s3://{BUCKET}/")
    assert {f"{code_prefix}/job.py", f"{code_prefix}/bundle.zip"} <= keys
    assert f"reviewflow/reports/{RUN_KEY}/quality/suite.yaml" in keys

    # A retry reattaches to the completed job of this run instead of submitting another.
    with pytest.raises(TaskDeferred) as again:
        gate(SNAPSHOT).execute(context(try_number=2))
    assert again.value.trigger.job_name == name
    assert [operation for operation, _ in aws].count("CreateProcessingJob") == 1
    # After the job was stopped, the next try starts attempt 2.
    sagemaker.stop_processing_job(ProcessingJobName=name)
    with pytest.raises(TaskDeferred) as third:
        gate(SNAPSHOT).execute(context(try_number=3))
    assert third.value.trigger.job_name == name[:-1] + "2"


def test_on_kill_stops_the_processing_job_of_this_try(aws) -> None:
    operator = gate(SNAPSHOT, deequ_jar=f"s3://{BUCKET}/jars/deequ-2.0.21-spark-3.5.jar")
    with pytest.raises(TaskDeferred):
        operator.execute(context())
    operator.on_kill()
    assert made(aws, "StopProcessingJob") == [{"ProcessingJobName": operator.job_id}]
    status = boto3.client("sagemaker", region_name=REGION).describe_processing_job(ProcessingJobName=operator.job_id)
    assert status["ProcessingJobStatus"] in ("Stopping", "Stopped")


def test_deequ_on_sagemaker_needs_a_jar(aws) -> None:
    from include.config import ConfigError

    with pytest.raises(ConfigError, match="needs deequ_jar: set REVIEWFLOW_DEEQU_JAR"):
        DataQualityGateOperator(task_id="g", curated_uri=SNAPSHOT, engine="deequ", aws_conn_id=AWS_CONN_ID).execute(context())


def test_the_ingest_dag_hands_the_deequ_jar_setting_to_the_gate(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.conftest import DAGS_FOLDER

    jar = f"s3://{BUCKET}/jars/deequ-2.0.21-spark-3.5.jar"
    monkeypatch.setenv("REVIEWFLOW_DEEQU_JAR", jar)
    task = DagBag(dag_folder=str(DAGS_FOLDER)).dags["reviews_ingest"].get_task("quality_gate")
    assert task.deequ_jar == jar
    task.curated_uri, task.engine, task.min_rows = SNAPSHOT, "deequ", 1000  # as the form renders them (natively)
    task.aws_conn_id = render_setting(task, "aws_conn_id")
    assert task.aws_conn_id == AWS_CONN_ID  # the DAGs' default: the setting reviewflow_aws_conn_id
    with pytest.raises(TaskDeferred):
        task.execute(context())
    (created,) = made(aws, "CreateProcessingJob")
    assert {i["InputName"]: i["S3Input"]["S3Uri"] for i in created["ProcessingInputs"]}["jars"] == jar


def test_emr_serverless_job_run(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    emr = boto3.client("emr-serverless", region_name=REGION)
    application = emr.create_application(name="reviewflow", releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
    # Another job on the shared application (moto also lists runs only once an application has one).
    emr.start_job_run(
        applicationId=application, executionRoleArn="arn:aws:iam::123456789012:role/emr", name="features",
        clientToken="other", jobDriver={"sparkSubmit": {"entryPoint": "s3://b/other.py"}},
    )  # fmt: skip
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWFLOW_EMR_APPLICATION_ID", application)
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWFLOW_EMR_EXECUTION_ROLE_ARN", "arn:aws:iam::123456789012:role/emr")
    with pytest.raises(TaskDeferred) as deferred:
        gate(SNAPSHOT, aws_compute="emr").execute(context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, EmrServerlessStartJobTrigger)
    job_id = trigger.job_id
    run = emr.get_job_run(applicationId=application, jobRunId=job_id)["jobRun"]
    driver = run["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"].endswith("/job.py")
    assert driver["entryPointArguments"][driver["entryPointArguments"].index("--snapshot-uri") + 1] == SNAPSHOT
    assert "spark.submit.pyFiles=s3://" in driver["sparkSubmitParameters"]
    assert "spark.jars.packages=com.amazon.deequ:deequ:" in driver["sparkSubmitParameters"]
    assert "spark-3.5" in driver["sparkSubmitParameters"]
    with pytest.raises(TaskDeferred) as again:
        gate(SNAPSHOT, aws_compute="emr").execute(context(try_number=2))
    assert again.value.trigger.job_id == job_id
    starts = [p for operation, p in aws if operation == "StartJobRun" and p["name"].startswith("reviewflow-quality")]
    assert len(starts) == 1


def test_execute_complete_reads_the_report_from_s3(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    alerts: list[str] = []
    monkeypatch.setattr(quality_module, "send_alert", lambda settings, title, message, ctx, **_: alerts.append(title))
    result = {
        "name": "isUnique(review_id)", "kind": "constraint", "level": "Error", "status": "Failure",
        "metric": "Uniqueness(review_id)", "observed": 0.98, "threshold": "== 1", "message": "", "line": 31,
    }  # fmt: skip
    report = {
        "snapshot": "20261126", "snapshot_uri": SNAPSHOT, "engine": "deequ", "passed": False,
        "counts": {"total": 1, "passed": 0, "error_failures": 1, "warning_failures": 0}, "results": [result],
    }  # fmt: skip
    s3 = boto3.client("s3", region_name=REGION)
    key = f"reviewflow/reports/{RUN_KEY}/quality/report.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(report).encode())
    operator = gate(SNAPSHOT)
    with pytest.raises(AirflowFailException, match="isUnique"):
        operator.execute_complete(context(), {"status": "success"})
    with pytest.raises(RuntimeError, match="did not succeed"):
        operator.execute_complete(context(), {"status": "failure", "message": "container exited 1"})
    report["results"] = [result | {"level": "Warning"}]
    report["counts"] = {"total": 1, "passed": 0, "error_failures": 0, "warning_failures": 1}
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(report).encode())
    returned = operator.execute_complete(context(), {"status": "success"})
    assert returned["warning_failures"] == 1 and returned["engine"] == "deequ" and len(alerts) == 1
    summary_body = s3.get_object(Bucket=BUCKET, Key=f"reviewflow/reports/{RUN_KEY}/summary.json")["Body"].read()
    expected_html = f"s3://{BUCKET}/reviewflow/reports/{RUN_KEY}/quality/report.html"
    assert json.loads(summary_body)["quality"]["report_html"] == expected_html


def test_code_bundle_is_byte_stable_and_self_contained(tmp_path: Path) -> None:
    import io
    import subprocess
    import sys
    import zipfile

    from include.spark_jobs import code_bundle, run_job_name
    from include.uris import to_s3a

    bundle = code_bundle(("quality", "hadoop_fs"), ("yaml", "pydeequ"))
    assert bundle == code_bundle(("quality", "hadoop_fs"), ("yaml", "pydeequ"))
    names = set(zipfile.ZipFile(io.BytesIO(bundle)).namelist())
    assert {"include/__init__.py", "include/errors.py", "include/quality/job.py", "include/quality/reviews_suite.yaml",
            "include/hadoop_fs.py"} <= names
    assert {"yaml/__init__.py", "pydeequ/checks.py"} <= names
    assert not any(name.startswith("include/features") for name in names)
    # The job imports from the bundle alone (no site-packages, not this checkout), as on a Spark cluster.
    (tmp_path / "bundle.zip").write_bytes(bundle)
    probe = "import sys; sys.path.insert(0, 'bundle.zip'); import include.quality.job"
    subprocess.run([sys.executable, "-S", "-c", probe], cwd=tmp_path, env={}, check=True)
    assert "include/errors.py" in zipfile.ZipFile(io.BytesIO(code_bundle(("features", "hadoop_fs")))).namelist()
    with pytest.raises(ModuleNotFoundError, match="include.nothing"):
        code_bundle(("nothing",))
    assert run_job_name("p", "a", "b") == run_job_name("p", "a", "b") != run_job_name("p", "a", "c")
    assert to_s3a("s3://b/k") == "s3a://b/k" and to_s3a("/local/k") == "/local/k"
