"""The data-quality gate: the suite of :mod:`include.quality` on a curated snapshot.

Error-level failures fail the task (no retry: the data will not change), so nothing
downstream — the curated-reviews asset, training — happens. Warning-level failures page
on-call through ``send_alert`` and the run continues.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk.exceptions import AirflowFailException

from include.config import REPO_ROOT, ConfigError, Settings, load_settings
from include.lineage_datasets import storage_dataset
from include.quality import DEFAULT_SUITE_PATH, ENGINES
from include.runbook import QUALITY_WARNINGS_ANCHOR, QUALITY_WARNINGS_TITLE
from include.spark_jobs import SPARK_CONTAINER_VERSION
from include.uris import join_uri, to_s3a
from reviewflow.caching import DEFAULT_EXPIRE_AFTER, StepCache, snapshot_fingerprint
from reviewflow.links import QualityReportLink
from reviewflow.metrics import emit_quality_failures
from reviewflow.notifiers import runbook_line, send_alert
from reviewflow.operators.base import AWS_TEMPLATE_FIELDS
from reviewflow.operators.spark_job import AWS_COMPUTE, SparkJobOperator
from reviewflow.run_summary import update_run_summary
from reviewflow.runs import run_key
from reviewflow.settings import load_aws_settings

if TYPE_CHECKING:
    from include.config import AwsSettings
    from include.quality.suite import Suite

# What the quality job runs (besides its suite file): an edit re-runs it.
QUALITY_CODE = (REPO_ROOT / "include" / "quality", REPO_ROOT / "include" / "hadoop_fs.py", REPO_ROOT / "include" / "spark.py")


def report_prefix(settings: Settings, key: str) -> str:
    """``<data_root>/reports/<run_key>/quality``: where report.json and report.html go."""
    return join_uri(settings.data_root, "reports", key, "quality")


def metrics_root(settings: Settings) -> str:
    """``<data_root>/quality/metrics``: the metrics history, one folder per dataset."""
    return join_uri(settings.data_root, "quality", "metrics")


class DataQualityGateOperator(SparkJobOperator):
    """Run the quality suite on a curated snapshot and fail the task on Error-level failures.

    ``local`` backend: the check engine runs in-process on a local SparkSession. ``aws``
    backend: :mod:`include.quality.job` runs as a SageMaker Processing job (default) or an
    EMR Serverless job named after the DAG run (a retry reattaches), and the task defers
    until it finishes. Either way the job writes ``<data_root>/reports/<run_key>/quality/
    report.{json,html}`` and ``<data_root>/quality/metrics/<dataset>/<snapshot>.json``.

    :param curated_uri: curated snapshot folder (``…/curated/reviews/snapshot=<id>``). (templated)
    :param suite_path: suite YAML (default: ``include/quality/reviews_suite.yaml``). (templated)
    :param engine: ``auto`` (Deequ when its jar is configured or in a local cache, else the built-in
        engine, without trying a download), ``deequ`` or ``spark``. (templated)
    :param min_rows: minimum row count (the suite's ``min_rows`` parameter, named in a failing
        threshold); ``None`` keeps the suite's. (templated)
    :param deequ_jar: path or ``s3://`` URI of the Deequ jar (the DAG passes ``REVIEWFLOW_DEEQU_JAR``);
        without it ``deequ`` makes Spark fetch PyDeequ's Maven coordinate (local, EMR), which needs
        Maven access, and SageMaker Processing cannot run it. (templated)
    :param force: (local) recompute even when a report with the same fingerprint (snapshot content,
        suite, engine, params, the job's code) is committed. (templated)
    :param cache_expire_after: (local) ISO 8601 duration after which a committed report is not reused
        (``P30D``; empty: never). (templated)
    :param aws_compute: (aws) ``sagemaker`` (Processing job) or ``emr`` (EMR Serverless).
    :param waiter_delay: (aws) seconds between job status polls.
    :param waiter_max_attempts: (aws) polls before giving up.
    :param aws_conn_id: the connection of every AWS call: the job, the code and reports on S3, the SNS page. (templated)
    :param region_name: their region; ``None``: the connection's. (templated)
    :returns: ``{"report_json", "report_html", "passed", "total", "error_failures",
        "warning_failures", "engine", "snapshot", "absent_labels", "cache"}`` (``absent_labels``: sentiment
        labels with no row in the snapshot, e.g. ``["neutral"]`` for a two-class data set; ``cache``:
        ``{"status": "hit"/"miss"/"off", "reason", "fingerprint", "from_run"}``; a reused report names the snapshot it was computed on).

    The task's page in the UI has a "Quality report" button: the run's HTML report, served by the
    API server (:mod:`reviewflow.ui`), also when the gate failed.
    """

    template_fields: Sequence[str] = (
        *AWS_TEMPLATE_FIELDS, "curated_uri", "suite_path", "engine", "min_rows", "deequ_jar", "force", "cache_expire_after",
    )
    operator_extra_links = (QualityReportLink(),)
    job_package = "quality"
    job_label = "the quality job"

    def __init__(
        self,
        *,
        curated_uri: str,
        suite_path: str | Path = DEFAULT_SUITE_PATH,
        engine: str = "auto",
        min_rows: int | None = None,
        deequ_jar: str | None = None,
        force: bool = False,
        cache_expire_after: str | None = DEFAULT_EXPIRE_AFTER,
        aws_compute: str = "sagemaker",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if aws_compute not in AWS_COMPUTE:
            raise ValueError(f"aws_compute must be one of {AWS_COMPUTE}, got {aws_compute!r}")
        self.curated_uri = curated_uri
        self.suite_path = str(suite_path)
        self.engine = engine
        self.min_rows = min_rows
        self.deequ_jar = deequ_jar
        self.force = force
        self.cache_expire_after = cache_expire_after
        self.aws_compute = aws_compute

    def _suite(self) -> Suite:
        """Load and validate the suite (before any Spark work)."""
        from include.quality.suite import load_suite

        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.min_rows is not None and self.min_rows < 0:
            raise ValueError(f"min_rows must be >= 0, got {self.min_rows}")
        return load_suite(self.suite_path, None if self.min_rows is None else {"min_rows": self.min_rows})

    def execute(self, context: Any) -> dict[str, Any]:
        settings = load_settings()
        key = run_key(context)
        suite = self._suite()
        if settings.backend == "local":
            from include.quality.deequ_engine import local_deequ_source
            from include.quality.job import quality_session, run_gate_job

            deequ = local_deequ_source(self.engine, self.deequ_jar)
            prefix = report_prefix(settings, key)
            cache = StepCache(settings, "quality", prefix, key, **self.aws_connection)
            decision = cache.decide(
                {"snapshot": snapshot_fingerprint(self.curated_uri, **self.aws_connection)},
                {"engine": self.engine, "deequ": None if deequ is None else deequ.description,
                 "min_rows": self.min_rows},
                (*QUALITY_CODE, Path(self.suite_path)),
                force=self.force,
                expire_after=self.cache_expire_after,
            )
            cache.run(decision, lambda: run_gate_job(
                quality_session(deequ),
                suite,
                snapshot_uri=self.curated_uri,
                engine=self.engine,
                report_prefix=prefix,
                metrics_root=metrics_root(settings),
                deequ_from=None if deequ is None else deequ.description,
            ))
            report = self.read_output(settings, key)
            return cache.record("quality", self.finish(context, settings, key, report, decision.summary()), decision)
        return self._submit(context, settings, load_aws_settings(settings), key)

    def _arguments(self, settings: Settings, key: str, suite_uri: str, uri: Callable[[str], str]) -> list[str]:
        """The job's command line; ``uri`` maps each URI to the scheme the job's Hadoop reads."""
        arguments = [
            "--snapshot-uri", uri(self.curated_uri),
            "--suite-uri", uri(suite_uri),
            "--report-prefix", uri(report_prefix(settings, key)),
            "--metrics-root", uri(metrics_root(settings)),
            "--engine", self.engine,
        ]  # fmt: skip
        return arguments + ([] if self.min_rows is None else ["--param", f"min_rows={self.min_rows}"])

    def _submit(self, context: Any, settings: Settings, aws: AwsSettings, key: str) -> NoReturn:
        if self.engine == "deequ" and self.aws_compute == "sagemaker" and not self.deequ_jar:
            raise ConfigError(
                "engine 'deequ' on SageMaker Processing needs deequ_jar: set REVIEWFLOW_DEEQU_JAR to an s3:// URI "
                "of the Deequ jar"
            )
        # The exact suite this run checked is kept beside its report.
        suite_uri = join_uri(report_prefix(settings, key), "suite.yaml")
        self.storage(suite_uri).write_bytes(suite_uri, Path(self.suite_path).read_bytes())
        bundled = ("yaml", "pydeequ")
        if self.aws_compute == "sagemaker":
            arguments = self._arguments(settings, key, suite_uri, to_s3a)
            return self.submit(context, settings, aws, arguments, compute="sagemaker", extra_modules=bundled,
                               jar_uri=self.deequ_jar)
        from include.quality.deequ_engine import deequ_maven_coordinate

        return self.submit(
            context, settings, aws, self._arguments(settings, key, suite_uri, lambda uri: uri), compute="emr",
            extra_modules=bundled, jar_uri=self.deequ_jar,
            packages=None if self.engine == "spark" else deequ_maven_coordinate(SPARK_CONTAINER_VERSION),
        )

    def output_uri(self, settings: Settings, key: str) -> str:
        return join_uri(report_prefix(settings, key), "report.json")

    def finish(
        self, context: Any, settings: Settings, key: str, report: dict[str, Any], cache: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Log and summarise the report (with the cache decision that produced it), page on warnings, fail on errors."""
        prefix = report_prefix(settings, key)
        counts = report["counts"]
        failures = [r for r in report["results"] if r["status"] == "Failure"]
        emit_quality_failures(context, len(failures))
        result = {
            "report_json": join_uri(prefix, "report.json"),
            "report_html": join_uri(prefix, "report.html"),
            "passed": counts["passed"],
            "total": counts["total"],
            "error_failures": counts["error_failures"],
            "warning_failures": counts["warning_failures"],
            "engine": report["engine"],
            "snapshot": report["snapshot"],
            "absent_labels": (report.get("bias") or {}).get("absent_labels", []),
        }
        self.log.info("quality report: %s (JSON: %s)", result["report_html"], result["report_json"])
        self.report_lineage([storage_dataset(self.curated_uri)], [storage_dataset(result["report_json"])])
        update_run_summary(
            settings,
            key,
            "quality",
            {**result, "gate": "passed" if report["passed"] else "failed", "failures": [r["name"] for r in failures],
             **({"cache": cache} if cache else {})},
            **self.aws_connection,
        )
        warnings = [r for r in failures if r["level"] == "Warning"]
        if warnings:
            send_alert(
                settings,
                f"{QUALITY_WARNINGS_TITLE}: {len(warnings)} warning(s) on snapshot {report['snapshot']}",
                _describe(warnings) + f"\nThe run continues. Report: {result['report_html']}\n" + runbook_line(settings, QUALITY_WARNINGS_ANCHOR),
                context,
                **self.aws_connection,
            )
        errors = [r for r in failures if r["level"] == "Error"]
        if errors:
            raise AirflowFailException(
                f"data-quality gate failed: {len(errors)} Error-level check(s) on {report['snapshot_uri']}:\n"
                + _describe(errors)
                + f"\nReport: {result['report_html']}. Fix the data (or change the param a threshold names) and "
                "re-run ingestion; retrying this task on the same snapshot gives the same verdict."
            )
        return result


def _describe(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        observed = "no value" if r["observed"] is None else f"{r['observed']:.6g}"
        lines.append(f"- [{r['level']}] {r['name']}: observed {observed}, expected {r['threshold']}. {r['message']}")
    return "\n".join(lines)
