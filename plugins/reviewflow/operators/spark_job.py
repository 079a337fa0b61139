"""The lifecycle of a Spark job under ``include/<package>/job.py`` on AWS, shared by the quality gate and the
feature job: stage its code, submit it to SageMaker Processing or EMR Serverless under a name stable across
retries (a retry reattaches), defer on the provider's trigger, read its output when it ends, stop it on kill."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from include.config import REPO_ROOT, ConfigError, Settings, load_settings
from include.spark_jobs import StagedCode, code_bundle, run_job_name
from include.uris import join_uri
from reviewflow.code_staging import stage_code
from reviewflow.hooks.processing import SparkJobHook
from reviewflow.operators.base import AwsConnectedOperator
from reviewflow.runs import run_key

if TYPE_CHECKING:
    from airflow.triggers.base import BaseTrigger

    from include.config import AwsSettings

AWS_COMPUTE = ("sagemaker", "emr")  # where a job runs on aws: SageMaker Processing or EMR Serverless


class SparkJobOperator(AwsConnectedOperator):
    """A task whose work is the Spark job ``include/<job_package>/job.py`` (``spark-submit``-able): in-process on
    the ``local`` backend (the subclass's ``execute``), on ``aws`` a SageMaker Processing job (the SageMaker Spark
    container) or an EMR Serverless job run, named after the DAG run so a retry reattaches to a live or finished
    job of its run instead of starting a second one. The task defers until the job ends; :meth:`execute_complete`
    then reads the JSON the job wrote at :meth:`output_uri` (recomputed from the run: a resumed task gets no
    ``kwargs``) and hands it to :meth:`finish`. :meth:`on_kill` stops the job, or the local session's Spark jobs.

    :param waiter_delay: (aws) seconds between job status polls.
    :param waiter_max_attempts: (aws) polls before giving up.
    """

    job_package: str  # the include package holding job.py, and the job's name prefix and code folder
    job_label: str  # how logs and errors name the job

    def __init__(self, *, waiter_delay: int = 30, waiter_max_attempts: int = 240, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.job_id: str | None = None  # the Processing job's name or the EMR Serverless job run's id
        self.application_id: str | None = None  # the EMR Serverless application of job_id (None: Processing)

    def output_uri(self, settings: Settings, key: str) -> str:
        """The JSON the job writes last (its report or manifest)."""
        raise NotImplementedError

    def finish(self, context: Any, settings: Settings, key: str, output: dict[str, Any]) -> dict[str, Any]:
        """Act on the job's output (summary, lineage, verdict); the task's XCom."""
        raise NotImplementedError

    def spark_job_hook(self) -> SparkJobHook:
        return SparkJobHook(**self.aws_connection)

    def stage_job(self, settings: Settings, extra_modules: tuple[str, ...]) -> StagedCode:
        """Upload ``job.py`` and its bundle (the package, ``hadoop_fs``, ``extra_modules``) under ``code/<package>/``."""
        return stage_code(
            join_uri(settings.data_root, "code", self.job_package),
            REPO_ROOT / "include" / self.job_package / "job.py",
            code_bundle((self.job_package, "hadoop_fs"), extra_modules=extra_modules),
            **self.aws_connection,
        )

    def job_name(self, context: Any) -> str:
        """The job's name in this task of this DAG run: the same on every try."""
        return run_job_name(f"reviewflow-{self.job_package}", context["dag_run"].dag_id, run_key(context), self.task_id)

    def submit(
        self,
        context: Any,
        settings: Settings,
        aws: AwsSettings,
        arguments: list[str],
        *,
        compute: str,
        extra_modules: tuple[str, ...] = (),
        **options: Any,
    ) -> NoReturn:
        """Stage the code, start the job (or reattach to this run's) and defer until it ends.

        :param compute: one of :data:`AWS_COMPUTE`: ``sagemaker`` (a Processing job) or ``emr`` (an EMR Serverless job run).
        :param extra_modules: pure-Python packages the job needs besides its own (the container may lack them).
        :param options: ``jar_uri`` (both), ``packages`` and ``spark_conf`` (EMR) of :class:`SparkJobHook`'s calls.
        """
        if compute == "sagemaker" and not aws.sagemaker_role_arn:
            raise ConfigError(
                f"set the Airflow Variable reviewflow_sagemaker_role_arn to run {self.job_label} on SageMaker Processing"
            )
        if compute == "emr" and not (aws.emr_application_id and aws.emr_execution_role_arn):
            raise ConfigError(
                f"{self.job_label} on EMR Serverless needs the Airflow Variables reviewflow_emr_application_id and "
                "reviewflow_emr_execution_role_arn"
            )
        code, name = self.stage_job(settings, extra_modules), self.job_name(context)
        start = self._start_processing if compute == "sagemaker" else self._start_emr
        trigger = start(context, settings, aws, name, code, arguments, **options)
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=self.waiter_delay * self.waiter_max_attempts),
        )

    def _start_processing(
        self, context: Any, settings: Settings, aws: AwsSettings, name: str, code: StagedCode, arguments: list[str],
        jar_uri: str | None = None,
    ) -> BaseTrigger:
        from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

        self.application_id = None
        self.job_id = self.spark_job_hook().start_processing_job(
            name, code=code, arguments=arguments, role_arn=aws.sagemaker_role_arn,  # type: ignore[arg-type]
            instance_type=aws.processing_instance_type, jar_uri=jar_uri,
        )
        self.log.info("%s: SageMaker Processing job %s", self.job_label, self.job_id)
        return SageMakerTrigger(
            job_name=self.job_id, job_type="processing", waiter_delay=self.waiter_delay,
            waiter_max_attempts=self.waiter_max_attempts, aws_conn_id=self.aws_conn_id, region_name=self.region_name,
        )

    def _start_emr(
        self, context: Any, settings: Settings, aws: AwsSettings, name: str, code: StagedCode, arguments: list[str],
        **spark: Any,
    ) -> BaseTrigger:
        from airflow.providers.amazon.aws.triggers.emr import EmrServerlessStartJobTrigger

        self.application_id = aws.emr_application_id
        self.job_id = self.spark_job_hook().start_emr_job(
            name, application_id=self.application_id, role_arn=aws.emr_execution_role_arn,  # type: ignore[arg-type]
            code=code, arguments=arguments, log_uri=join_uri(settings.data_root, "logs", "emr-serverless"),
            try_number=context["ti"].try_number, **spark,
        )
        self.log.info("%s: EMR Serverless job run %s (%s)", self.job_label, self.job_id, name)
        return EmrServerlessStartJobTrigger(
            application_id=self.application_id, job_id=self.job_id, waiter_delay=self.waiter_delay,
            waiter_max_attempts=self.waiter_max_attempts, aws_conn_id=self.aws_conn_id, region_name=self.region_name,
            cancel_on_kill=True,
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the job's trigger: read the output it wrote and finish.

        :raises RuntimeError: naming the job, when it did not succeed or wrote no output.
        """
        if not event or event.get("status") != "success":
            raise RuntimeError(f"{self.job_label} did not succeed: {event}")
        settings = load_settings()
        key = run_key(context)
        return self.finish(context, settings, key, self.read_output(settings, key))

    def read_output(self, settings: Settings, key: str) -> dict[str, Any]:
        """The output the job committed for run ``key``. :raises RuntimeError: when there is none."""
        uri = self.output_uri(settings, key)
        storage = self.storage(uri)
        if not storage.exists(uri):
            raise RuntimeError(f"{self.job_label} ended but {uri} is missing")
        return storage.read_json(uri)

    def on_kill(self) -> None:
        """Stop this try's job on AWS, or the local session's Spark jobs."""
        if self.job_id and self.application_id:
            self.spark_job_hook().cancel_emr_job(self.application_id, self.job_id)
        elif self.job_id:
            self.spark_job_hook().stop_processing_job(self.job_id)
        else:
            from pyspark.sql import SparkSession

            session = SparkSession.getActiveSession()
            if session is not None:
                session.sparkContext.cancelAllJobs()
