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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.errors import BadInputError
from include.quality.results import CheckResult
from include.quality.suite import Constraint, Level, Suite

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

F2J_COORDINATE = "net.sourceforge.f2j:arpack_combined_all"


class DeequUnavailableError(BadInputError):
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


# Spark's --packages cache: Spark 4 keeps it in ~/.ivy2.5.2, Spark 3 in ~/.ivy2.
IVY_HOMES = (".ivy2.5.2", ".ivy2")


def cached_deequ_jar(coordinate: str, home: Path | None = None) -> Path | None:
    """The jar of the Maven ``coordinate`` (``group:artifact:version``) if a local cache holds it:
    Spark's Ivy cache (its ``jars/`` folder or the cache proper) or the local Maven repository."""
    group, artifact, version = coordinate.split(":")
    home = home or Path.home()
    candidates = [
        *(home / ivy / "jars" / f"{group}_{artifact}-{version}.jar" for ivy in IVY_HOMES),
        *(home / ivy / "cache" / group / artifact / "jars" / f"{artifact}-{version}.jar" for ivy in IVY_HOMES),
        home.joinpath(".m2", "repository", *group.split("."), artifact, version, f"{artifact}-{version}.jar"),
    ]
    return next((path for path in candidates if path.is_file()), None)


@dataclass(frozen=True)
class DeequSource:
    """Where a local SparkSession loads Deequ from: its Spark settings and a description for the log."""

    spark_conf: dict[str, str]
    description: str


def local_deequ_source(engine: str, jar: str | None = None, home: Path | None = None) -> DeequSource | None:
    """Decide, from cheap local checks only, where a local session gets Deequ for ``engine``.

    A configured ``jar`` wins, then a jar already in the local Ivy/Maven cache. Without either,
    ``deequ`` fetches PyDeequ's Maven coordinate (it was asked for), while ``auto`` and ``spark``
    get ``None``: no Deequ, and no download attempt with its unreachable-host errors.

    :raises DeequUnavailableError: if the configured local ``jar`` does not exist.
    """
    if engine == "spark":
        return None
    if jar:
        if "://" not in jar and not Path(jar).is_file():
            raise DeequUnavailableError(
                f"the configured Deequ jar {jar} does not exist (deequ_jar / REVIEWFLOW_DEEQU_JAR)"
            )
        return DeequSource({"spark.jars": jar}, f"the configured jar {jar}")
    coordinate = deequ_maven_coordinate()
    cached = cached_deequ_jar(coordinate, home)
    if cached is not None:
        return DeequSource({"spark.jars": str(cached)}, f"the cached jar {cached}")
    if engine == "deequ":
        conf = {"spark.jars.packages": coordinate, "spark.jars.excludes": F2J_COORDINATE}
        return DeequSource(conf, f"Maven ({coordinate})")
    return None


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


def check_descriptions(suite: Suite) -> list[str]:
    """The description of each constraint's Deequ check, ``"<index>: <constraint name>"``: unique, so
    every row of Deequ's check results maps back to one constraint."""
    return [f"{index}: {constraint.name}" for index, constraint in enumerate(suite.constraints)]


def build_checks(suite: Suite, make_check: Callable[[Level, str], Any]) -> list[Any]:
    """One check per constraint, made by ``make_check(level, description)`` and declared with
    :func:`add_constraint`; descriptions from :func:`check_descriptions`."""
    return [
        add_constraint(make_check(c.level, text), c)
        for text, c in zip(check_descriptions(suite), suite.constraints, strict=True)
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
    return results_from_deequ(
        suite,
        VerificationResult.checkResultsAsDataFrame(spark, outcome, pandas=True).to_dict("records"),
        VerificationResult.successMetricsAsDataFrame(spark, outcome, pandas=True).to_dict("records"),
    )


def results_from_deequ(
    suite: Suite, check_rows: list[dict[str, Any]], metric_rows: list[dict[str, Any]]
) -> tuple[list[CheckResult], dict[str, float | None]]:
    """Map Deequ's result frames back to the suite's constraints.

    :param check_rows: ``checkResultsAsDataFrame`` rows (``check`` = the description
        :func:`build_checks` gave, ``constraint_status``, ``constraint_message``).
    :param metric_rows: ``successMetricsAsDataFrame`` rows (``name``, ``instance``, ``value``);
        a metric Deequ could not compute is absent, and its constraint's ``observed`` is ``None``.
    :raises RuntimeError: naming the checks Deequ returned no row for.
    """
    metrics = {f"{row['name']}({row['instance']})": float(row["value"]) for row in metric_rows}
    by_check = {row["check"]: row for row in check_rows}
    descriptions = check_descriptions(suite)
    missing = [text for text in descriptions if text not in by_check]
    if missing:
        raise RuntimeError(f"Deequ returned no result for check(s) {missing} of {suite.source}")
    results = []
    for text, constraint in zip(descriptions, suite.constraints, strict=True):
        row = by_check[text]
        results.append(
            CheckResult(
                name=constraint.name,
                kind="constraint",
                level=constraint.level,
                status="Success" if row["constraint_status"] == "Success" else "Failure",
                metric=constraint.metric.key,
                observed=metrics.get(constraint.metric.key),
                threshold=constraint.threshold,
                message=row["constraint_message"] or "",
                line=constraint.line,
            )
        )
    return results, metrics
