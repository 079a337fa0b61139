"""Run the quality suite on one curated snapshot: the ``spark-submit`` entry point.

The same function runs in-process on a local SparkSession (``local`` backend) and as a
SageMaker Processing / EMR Serverless Spark job (``aws`` backend)::

    spark-submit --py-files quality.zip include/quality/job.py \\
        --snapshot-uri s3://bucket/curated/reviews/snapshot=2026-11-26 \\
        --suite-uri s3://bucket/code/quality/reviews_suite.yaml \\
        --report-prefix s3://bucket/reports/<run key>/quality \\
        --metrics-root s3://bucket/quality/metrics [--engine auto] [--param min_rows=1000]

It writes ``report.json`` and ``report.html`` under the report prefix and the run's
metrics to ``<metrics root>/<dataset>/<snapshot>.json``; every file is read and written
through Spark's Hadoop file system, so local paths, ``file://``, ``s3://`` (EMR) and
``s3a://`` all work. The job itself succeeds whenever it produced a report: the gate
decision (fail on Error-level failures) belongs to the caller, who reads ``report.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import sys
from typing import TYPE_CHECKING, Any

from include import hadoop_fs
from include.errors import BadInputError
from include.quality import ENGINES
from include.quality.bias import bias_metrics, bias_results, label_counts
from include.quality.deequ_engine import (
    DeequSource,
    DeequUnavailableError,
    deequ_loaded,
    run_deequ,
    unavailable_message,
)
from include.quality.history import evaluate_anomalies, metrics_record, previous_record
from include.quality.report import build_report, render_html
from include.quality.results import evaluate_constraint
from include.quality.spark_engine import compute_metrics
from include.quality.suite import NUMERIC_TYPES, Suite, parse_suite

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

_SNAPSHOT = re.compile(r"/(?P<dataset>[^/]+)/snapshot=(?P<snapshot>[^/]+)/*$")


class QualityInputError(BadInputError):
    """The snapshot cannot be checked (wrong location, missing or mistyped column)."""


def parse_snapshot_uri(uri: str) -> tuple[str, str]:
    """``…/curated/<dataset>/snapshot=<id>`` → ``(dataset, id)``."""
    match = _SNAPSHOT.search(uri)
    if not match:
        raise QualityInputError(f"{uri} is not a snapshot folder (expected …/<dataset>/snapshot=<id>)")
    return match["dataset"], match["snapshot"]


NO_LOCAL_DEEQU = "no Deequ jar configured (REVIEWFLOW_DEEQU_JAR) or in the local Ivy/Maven caches; no download tried"


def choose_engine(requested: str, spark: SparkSession, deequ_from: str | None = "the Spark classpath") -> str:
    """Resolve ``auto`` to ``deequ`` when Deequ loads in ``spark``, else ``spark``; log one line
    saying which engine runs and why.

    :param deequ_from: where the session was given Deequ (``None``: nowhere, so it is not probed).
    """
    if requested not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {requested!r}")
    loaded = requested != "spark" and deequ_from is not None and deequ_loaded(spark)
    if requested == "deequ" and not loaded:
        raise DeequUnavailableError(unavailable_message(f"it did not load from {deequ_from or 'anywhere'}"))
    engine = "deequ" if loaded else "spark"
    if requested == "spark":
        reason = "built-in engine chosen"
    elif loaded:
        reason = f"Deequ loaded from {deequ_from}"
    else:
        reason = NO_LOCAL_DEEQU if deequ_from is None else f"Deequ did not load from {deequ_from}"
    log.info("quality engine: %s (requested %s; %s)", engine, requested, reason)
    return engine


def quality_session(deequ: DeequSource | None) -> SparkSession:
    """A local SparkSession for the gate, with Deequ on its classpath from ``deequ`` if given."""
    from pyspark.errors import PySparkRuntimeError

    from include.spark import local_spark_session

    if deequ is None:
        return local_spark_session("reviewflow-quality")
    try:
        return local_spark_session("reviewflow-quality", deequ.spark_conf)
    except PySparkRuntimeError as error:
        detail = f"Spark could not start with {deequ.description}: {error}"
        raise DeequUnavailableError(unavailable_message(detail)) from None


_SPARK_TYPES = {
    "string": ("string",),
    "int": ("tinyint", "smallint", "int", "bigint"),
    "double": ("tinyint", "smallint", "int", "bigint", "float", "double"),
    "date": ("date",),
}


def check_columns(df: DataFrame, suite: Suite, snapshot_uri: str) -> None:
    """Every column the suite declares exists in ``df`` with a matching type."""
    actual = {field.name: field.dataType.simpleString() for field in df.schema.fields}
    missing = [name for name in suite.columns if name not in actual]
    if missing:
        raise QualityInputError(
            f"{snapshot_uri} lacks column(s) {missing} declared in {suite.source}; it has {sorted(actual)}"
        )
    for name, kind in suite.columns.items():
        spark_type = actual[name]
        if spark_type not in _SPARK_TYPES[kind] and not (kind in NUMERIC_TYPES and spark_type.startswith("decimal")):
            raise QualityInputError(
                f"{snapshot_uri}: column {name!r} is {spark_type}, {suite.source} declares it {kind}"
            )


def run_suite(
    spark: SparkSession,
    df: DataFrame,
    suite: Suite,
    *,
    engine: str,
    history: list[dict[str, Any]],
    snapshot: str,
    snapshot_uri: str,
    now: dt.datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run constraints (with ``engine``), anomaly checks and bias metrics on ``df``.

    :returns: the report document and the metrics-history record of this run.
    """
    if engine == "deequ":
        results, metrics = run_deequ(spark, df, suite)
        missing = [m for m in suite.metrics() if m.key not in metrics]
        if missing:  # metrics only anomaly checks use: same definitions, built-in engine
            metrics.update(compute_metrics(df, missing))
    else:
        metrics = compute_metrics(df, suite.metrics())
        results = [evaluate_constraint(c, metrics[c.metric.key]) for c in suite.constraints]
    previous = previous_record(history, snapshot)
    results += evaluate_anomalies(suite.anomalies, metrics, previous)
    bias = None
    if suite.bias is not None:
        counts, excluded = label_counts(df, suite.bias)
        per_facet = bias_metrics(counts, list(suite.bias.labels))
        results += bias_results(per_facet, suite.bias)
        label_rows = {label: sum(by_label.get(label, 0) for by_label in counts.values()) for label in suite.bias.labels}
        bias = {
            "facet": suite.bias.facet,
            "excluded_rows": excluded,
            "facets": per_facet,
            "label_rows": label_rows,
            "absent_labels": [label for label, rows in label_rows.items() if rows == 0],
        }
    generated_at = now.isoformat()
    report = build_report(
        dataset=suite.dataset,
        snapshot=snapshot,
        snapshot_uri=snapshot_uri,
        suite_source=suite.source,
        engine=engine,
        generated_at=generated_at,
        results=results,
        metrics=metrics,
        bias=bias,
        previous_snapshot=None if previous is None else previous["snapshot"],
    )
    return report, metrics_record(suite.dataset, snapshot, engine, metrics, generated_at)


def read_history(spark: SparkSession, folder: str) -> list[dict[str, Any]]:
    """Every ``*.json`` record in ``folder`` (empty when the folder does not exist)."""
    if not hadoop_fs.exists(spark, folder):
        return []
    names = [n for n in hadoop_fs.list_names(spark, folder) if n.endswith(".json") and not n.startswith(".")]
    return [json.loads(hadoop_fs.read_bytes(spark, f"{folder.rstrip('/')}/{name}")) for name in names]


def run_gate_job(
    spark: SparkSession,
    suite: Suite,
    *,
    snapshot_uri: str,
    engine: str,
    report_prefix: str,
    metrics_root: str,
    now: dt.datetime | None = None,
    deequ_from: str | None = "the Spark classpath",
) -> dict[str, Any]:
    """Check the snapshot at ``snapshot_uri``, write report and metrics record; return the report.

    ``deequ_from`` says where ``spark`` was given Deequ (see :func:`choose_engine`).
    """
    dataset, snapshot = parse_snapshot_uri(snapshot_uri)
    if dataset != suite.dataset:
        raise QualityInputError(f"{snapshot_uri} holds dataset {dataset!r}, {suite.source} checks {suite.dataset!r}")
    chosen = choose_engine(engine, spark, deequ_from)
    df = spark.read.parquet(snapshot_uri)
    check_columns(df, suite, snapshot_uri)
    history_folder = f"{metrics_root.rstrip('/')}/{dataset}"
    report, record = run_suite(
        spark,
        df,
        suite,
        engine=chosen,
        history=read_history(spark, history_folder),
        snapshot=snapshot,
        snapshot_uri=snapshot_uri,
        now=now or dt.datetime.now(dt.timezone.utc),
    )
    prefix = report_prefix.rstrip("/")
    hadoop_fs.write_json(spark, f"{prefix}/report.json", report)
    hadoop_fs.write_bytes(spark, f"{prefix}/report.html", render_html(report).encode())
    hadoop_fs.write_json(spark, f"{history_folder}/{snapshot}.json", record)
    counts = report["counts"]
    log.info(
        "quality of %s: %s (%d/%d passed, %d Error and %d Warning failures); report %s/report.html",
        snapshot_uri,
        "PASSED" if report["passed"] else "FAILED",
        counts["passed"],
        counts["total"],
        counts["error_failures"],
        counts["warning_failures"],
        prefix,
    )
    return report


def _param(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--param takes NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the data-quality suite on a curated snapshot.")
    parser.add_argument("--snapshot-uri", required=True)
    parser.add_argument("--suite-uri", required=True, help="suite YAML (path or URI)")
    parser.add_argument("--report-prefix", required=True)
    parser.add_argument("--metrics-root", required=True)
    parser.add_argument("--engine", choices=ENGINES, default="auto")
    parser.add_argument("--param", type=_param, action="append", default=[], help="suite parameter NAME=VALUE")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("reviewflow-quality").getOrCreate()
    suite = parse_suite(hadoop_fs.read_bytes(spark, args.suite_uri).decode("utf-8"), args.suite_uri, dict(args.param))
    report = run_gate_job(
        spark,
        suite,
        snapshot_uri=args.snapshot_uri,
        engine=args.engine,
        report_prefix=args.report_prefix,
        metrics_root=args.metrics_root,
    )
    print(json.dumps({"passed": report["passed"], "counts": report["counts"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
