"""The one place that builds a SparkSession for the ``local`` backend and tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def local_spark_session(app_name: str, extra_conf: dict[str, str] | None = None) -> SparkSession:
    """Return a small local SparkSession (2 cores, UTC, no UI) for ``app_name``.

    On EMR or SageMaker Processing ``spark-submit`` provides the session and this
    function is not called; job scripts use ``SparkSession.builder.getOrCreate()``.
    """
    import os
    import sys

    from pyspark.sql import SparkSession

    # Python workers must run this interpreter (and see its packages), not whatever python3
    # is first on PATH; PySpark reads the worker executable from this variable.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    builder = (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
