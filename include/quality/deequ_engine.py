"""The ``deequ`` engine: the suite translated into PyDeequ ``Check`` calls and run by
Deequ's ``VerificationSuite`` (needs the Deequ jar on the Spark classpath).

One PyDeequ ``Check`` per constraint, described by its position and name, so every Deequ
result maps back to exactly one declared constraint; Deequ still computes the analyzers
of all checks together in one verification run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from include.quality.results import CheckResult
from include.quality.suite import Constraint, Level, Suite

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

F2J_COORDINATE = "net.sourceforge.f2j:arpack_combined_all"


class DeequUnavailableError(RuntimeError):
    """The ``deequ`` engine was chosen but the Deequ jar is not on the Spark classpath."""


def deequ_maven_coordinate(spark_version: str | None = None) -> str:
    """PyDeequ's Maven coordinate of the Deequ build for ``spark_version`` (default: the
    installed pyspark's), e.g. ``com.amazon.deequ:deequ:2.0.18-spark-4.1``."""
    import pyspark

    # PyDeequ reads SPARK_VERSION when it is imported; it must match the running Spark.
    os.environ.setdefault("SPARK_VERSION", pyspark.__version__)
    from pydeequ.configs import SPARK_TO_DEEQU_COORD_MAPPING

    version = ".".join((spark_version or pyspark.__version__).split(".")[:2])
    if version not in SPARK_TO_DEEQU_COORD_MAPPING:
        raise DeequUnavailableError(
            f"PyDeequ has no Deequ build for Spark {version}; builds exist for {sorted(SPARK_TO_DEEQU_COORD_MAPPING)}"
        )
    return SPARK_TO_DEEQU_COORD_MAPPING[version]


def deequ_spark_conf(jar: str | None = None) -> dict[str, str]:
    """Spark settings that put Deequ on the classpath: ``jar`` (a path or URI) if given,
    else ``spark.jars.packages`` with PyDeequ's Maven coordinate (needs Maven access)."""
    if jar:
        return {"spark.jars": jar}
    return {"spark.jars.packages": deequ_maven_coordinate(), "spark.jars.excludes": F2J_COORDINATE}


def unavailable_message(detail: str = "") -> str:
    coordinate = deequ_maven_coordinate()
    return (
        "engine 'deequ' needs the Deequ jar on the Spark classpath"
        + (f" ({detail})" if detail else "")
        + f". Provide it with the gate's deequ_jar setting (a local path or s3:// URI of "
        f"deequ-*.jar, passed as spark.jars / spark-submit --jars), or let Spark fetch "
        f"--packages {coordinate} from Maven Central; or choose engine 'spark' or 'auto'."
    )


def deequ_loaded(spark: SparkSession) -> bool:
    """Whether Deequ's classes can be loaded by ``spark``'s JVM."""
    from py4j.java_gateway import JavaClass

    return isinstance(spark._jvm.com.amazon.deequ.checks.Check, JavaClass)


def add_constraint(check: Any, constraint: Constraint) -> Any:
    """Call the PyDeequ ``Check`` method that declares ``constraint`` on ``check``."""
    column = constraint.metric.columns[0] if constraint.metric.columns else None
    assertion = constraint.holds
    hint = f"{constraint.name}, line {constraint.line}"
    name = constraint.check
    arguments = constraint.arguments
    if name == "hasSize":
        return check.hasSize(assertion, hint=hint)
    if name in ("isComplete", "isUnique"):
        return getattr(check, name)(column, hint=hint)
    if name == "hasUniqueness":
        return check.hasUniqueness(list(constraint.metric.columns), assertion, hint=hint)
    if name == "isContainedIn":
        return check.isContainedIn(column, list(arguments["values"]), assertion, hint=hint)
    if name == "hasPattern":
        return check.hasPattern(column, arguments["pattern"], assertion, hint=hint)
    if name == "satisfies":
        return check.satisfies(arguments["predicate"], arguments["name"], assertion, hint=hint)
    if name in ("hasCompleteness", "hasMin", "hasMax", "hasApproxCountDistinct"):
        return getattr(check, name)(column, assertion, hint=hint)
    raise ValueError(f"no PyDeequ translation for check {name!r}")


def build_checks(suite: Suite, make_check: Callable[[Level, str], Any]) -> list[Any]:
    """One check per constraint, made by ``make_check(level, description)`` and declared
    with :func:`add_constraint`; descriptions are ``"<index>: <constraint name>"``."""
    return [
        add_constraint(make_check(c.level, f"{index}: {c.name}"), c) for index, c in enumerate(suite.constraints)
    ]


def run_deequ(spark: SparkSession, df: DataFrame, suite: Suite) -> tuple[list[CheckResult], dict[str, float | None]]:
    """Run the suite's constraints with Deequ's ``VerificationSuite``.

    :returns: one result per constraint (Deequ's status, observed metric value) and the
        metrics Deequ computed, keyed like the spark engine's (``Completeness(review_id)``).
    """
    if not deequ_loaded(spark):
        raise DeequUnavailableError(unavailable_message("the running Spark session cannot load it"))
    deequ_maven_coordinate()  # sets SPARK_VERSION before PyDeequ is imported
    from pydeequ.checks import Check, CheckLevel
    from pydeequ.verification import VerificationResult, VerificationSuite

    builder = VerificationSuite(spark).onData(df)
    for check in build_checks(suite, lambda level, text: Check(spark, CheckLevel[level], text)):
        builder = builder.addCheck(check)
    outcome = builder.run()
    rows = VerificationResult.checkResultsAsDataFrame(spark, outcome, pandas=True).to_dict("records")
    metric_rows = VerificationResult.successMetricsAsDataFrame(spark, outcome, pandas=True).to_dict("records")
    metrics = {f"{row['name']}({row['instance']})": float(row["value"]) for row in metric_rows}
    by_check = {row["check"]: row for row in rows}
    results = []
    for index, constraint in enumerate(suite.constraints):
        row = by_check[f"{index}: {constraint.name}"]
        value = metrics.get(constraint.metric.key)
        results.append(
            CheckResult(
                name=constraint.name,
                kind="constraint",
                level=constraint.level,
                status="Success" if row["constraint_status"] == "Success" else "Failure",
                metric=constraint.metric.key,
                observed=value,
                threshold=constraint.threshold,
                message=row["constraint_message"] or "",
                line=constraint.line,
            )
        )
    return results, metrics
