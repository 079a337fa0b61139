"""The one place that builds a SparkSession for the ``local`` backend and tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


# The local session: 2 cores, few shuffle partitions, UTC, no UI, Arrow for Python UDFs.
LOCAL_MASTER = "local[2]"
LOCAL_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.driver.memory": "2g",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


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

    builder = SparkSession.builder.master(LOCAL_MASTER).appName(app_name)
    for key, value in {**LOCAL_CONF, **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
