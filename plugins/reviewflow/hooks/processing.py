"""Run a ``spark-submit``-able script on AWS: a SageMaker Processing job (the SageMaker Spark
container, ``smspark-submit``) or an EMR Serverless job run.

A thin, stateless client over the provider's ``SageMakerHook`` / ``EmrServerlessHook``
boto3 clients. Submissions are idempotent: a job is named after the DAG run, and a retry
reattaches to a running or completed job of that name instead of starting another. The job's
code is staged beforehand (:mod:`reviewflow.code_staging`).
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

from include.spark_jobs import SPARK_CONTAINER_VERSION, StagedCode, processing_input

PROCESSING_CODE_DIR = "/opt/ml/processing/input/code"
PROCESSING_JARS_DIR = "/opt/ml/processing/input/jars"
# Processing job states in which a job of this run is still useful (reattach instead of resubmitting).
PROCESSING_LIVE_OR_DONE = ("InProgress", "Completed")
EMR_LIVE_OR_DONE = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "SUCCESS", "QUEUED")


class SparkJobHook(SageMakerHook):
    """Submit, find and stop Spark jobs on SageMaker Processing and EMR Serverless: the provider's
    ``SageMakerHook``, with an EMR Serverless client of the same connection.

    :param aws_conn_id: Airflow connection for credentials and region (``None``: boto3 defaults).
    Other keyword arguments (``region_name``, ``verify``, ``config``) are ``SageMakerHook``'s.
    """

    def __init__(self, *, aws_conn_id: str | None, **kwargs: Any) -> None:
        super().__init__(aws_conn_id=aws_conn_id, **kwargs)

    @cached_property
    def emr_serverless(self) -> Any:
        from airflow.providers.amazon.aws.hooks.emr import EmrServerlessHook

        return EmrServerlessHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify, config=self.config
        ).conn

    def spark_image_uri(self) -> str:
        """The SageMaker Spark processing container of this region."""
        from sagemaker.core import image_uris

        return image_uris.retrieve("spark", region=self.conn.meta.region_name, version=SPARK_CONTAINER_VERSION)

    def find_processing_job(self, base_name: str) -> tuple[str | None, int]:
        """The newest live or completed job named ``<base_name>-<n>`` and how many attempts exist."""
        paginator = self.conn.get_paginator("list_processing_jobs")
        jobs = [
            job
            for page in paginator.paginate(NameContains=base_name)
            for job in page["ProcessingJobSummaries"]
            if job["ProcessingJobName"].rsplit("-", 1)[0] == base_name
        ]
        useful = [job for job in jobs if job["ProcessingJobStatus"] in PROCESSING_LIVE_OR_DONE]
        newest = max(useful, key=lambda job: job["CreationTime"])["ProcessingJobName"] if useful else None
        return newest, len(jobs)

    def start_processing_job(
        self,
        base_name: str,
        *,
        code: StagedCode,
        arguments: list[str],
        role_arn: str,
        instance_type: str,
        jar_uri: str | None = None,
        image_uri: str | None = None,
        max_runtime_seconds: int = 3600,
    ) -> str:
        """Run ``code`` with ``smspark-submit`` as a Processing job; reattach if one of this run exists.

        :param jar_uri: ``s3://`` URI of a jar (e.g. Deequ's) downloaded into the container and
            passed as ``--jars``.
        :returns: the job name.
        """
        existing, attempts = self.find_processing_job(base_name)
        if existing:
            return existing
        name = f"{base_name}-{attempts + 1}"
        entry = ["smspark-submit", "--py-files", f"{PROCESSING_CODE_DIR}/{Path(code.py_files).name}"]
        inputs = [processing_input("code", code.root, PROCESSING_CODE_DIR)]
        if jar_uri:
            entry += ["--jars", PROCESSING_JARS_DIR]
            inputs.append(processing_input("jars", jar_uri, PROCESSING_JARS_DIR))
        entry.append(f"{PROCESSING_CODE_DIR}/{Path(code.entry_point).name}")
        self.conn.create_processing_job(
            ProcessingJobName=name,
            RoleArn=role_arn,
            AppSpecification={
                "ImageUri": image_uri or self.spark_image_uri(),
                "ContainerEntrypoint": entry,
                "ContainerArguments": arguments,
            },
            ProcessingInputs=inputs,
            ProcessingResources={
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": 30}
            },
            StoppingCondition={"MaxRuntimeInSeconds": max_runtime_seconds},
        )
        return name

    def stop_processing_job(self, name: str) -> None:
        self.conn.stop_processing_job(ProcessingJobName=name)

    def find_emr_job(self, application_id: str, name: str) -> str | None:
        """The newest live or succeeded EMR Serverless job run called ``name``."""
        paginator = self.emr_serverless.get_paginator("list_job_runs")
        runs = [
            run
            for page in paginator.paginate(applicationId=application_id, states=list(EMR_LIVE_OR_DONE))
            for run in page["jobRuns"]
            if run.get("name") == name
        ]
        return max(runs, key=lambda run: run["createdAt"])["id"] if runs else None

    def start_emr_job(
        self,
        name: str,
        *,
        application_id: str,
        role_arn: str,
        code: StagedCode,
        arguments: list[str],
        log_uri: str,
        try_number: int,
        jar_uri: str | None = None,
        packages: str | None = None,
        spark_conf: dict[str, str] | None = None,
    ) -> str:
        """Run ``code`` on EMR Serverless; reattach to a live or succeeded run called ``name``.

        :param jar_uri: jar for ``spark.jars``; else ``packages`` (Maven coordinates) if given.
        :param spark_conf: further ``--conf`` settings (e.g. a packed Python environment).
        :param try_number: the task's try; the client token hashes it with ``name``, so a retry after
            a failed run starts a new one while live runs are reattached above.
        :returns: the job run id.
        """
        existing = self.find_emr_job(application_id, name)
        if existing:
            return existing
        parameters = [f"--conf spark.submit.pyFiles={code.py_files}"]
        parameters += [f"--conf {key}={value}" for key, value in (spark_conf or {}).items()]
        if jar_uri:
            parameters.append(f"--conf spark.jars={jar_uri}")
        elif packages:
            parameters.append(f"--conf spark.jars.packages={packages}")
        response = self.emr_serverless.start_job_run(
            applicationId=application_id,
            executionRoleArn=role_arn,
            name=name,
            clientToken=hashlib.sha256(f"{name}/{try_number}".encode()).hexdigest()[:64],
            jobDriver={
                "sparkSubmit": {
                    "entryPoint": code.entry_point,
                    "entryPointArguments": arguments,
                    "sparkSubmitParameters": " ".join(parameters),
                }
            },
            configurationOverrides={"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": log_uri}}},
        )
        return response["jobRunId"]

    def cancel_emr_job(self, application_id: str, job_run_id: str) -> None:
        self.emr_serverless.cancel_job_run(applicationId=application_id, jobRunId=job_run_id)
