"""Suite → PyDeequ translation, recorded call by call (the Deequ jar cannot be loaded here)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from include.quality import DEFAULT_SUITE_PATH
from include.quality.deequ_engine import (
    DeequUnavailableError,
    build_checks,
    deequ_loaded,
    deequ_maven_coordinate,
    deequ_spark_conf,
)
from include.quality.job import choose_engine
from include.quality.suite import load_suite, parse_suite


class RecordingCheck:
    """Stands in for ``pydeequ.checks.Check``: records each builder call and returns itself."""

    def __init__(self, level: str, description: str) -> None:
        self.level = level
        self.description = description
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> RecordingCheck:
            self.calls.append((method, args, kwargs))
            return self

        return record


def test_default_suite_translates_to_one_deequ_check_per_constraint() -> None:
    suite = load_suite(DEFAULT_SUITE_PATH, {"min_size": 1000})
    checks = build_checks(suite, RecordingCheck)
    assert len(checks) == len(suite.constraints)
    assert all(len(check.calls) == 1 for check in checks)
    calls = {check.description: check.calls[0] for check in checks}
    levels = {check.description: check.level for check in checks}

    method, args, kwargs = calls["0: hasSize(*)"]
    assert method == "hasSize" and levels["0: hasSize(*)"] == "Error"
    assert args[0](1000) and not args[0](999)
    assert kwargs["hint"].endswith("line 29")

    assert calls["1: isComplete(review_id)"][:2] == ("isComplete", ("review_id",))
    assert calls["2: isUnique(review_id)"][:2] == ("isUnique", ("review_id",))

    method, args, _ = calls["3: hasPattern(review_id)"]
    assert (method, args[0], args[1]) == ("hasPattern", "review_id", "^R[0-9A-Z]{6,20}$")
    assert levels["3: hasPattern(review_id)"] == "Warning"
    assert args[2](0.99) and not args[2](0.98)

    method, args, _ = calls["5: hasMin(star_rating)"]
    assert (method, args[0]) == ("hasMin", "star_rating") and args[1](1.0) and not args[1](0.0)
    method, args, _ = calls["6: hasMax(star_rating)"]
    assert (method, args[0]) == ("hasMax", "star_rating") and args[1](5.0) and not args[1](6.0)

    method, args, _ = calls["7: isContainedIn(marketplace)"]
    assert (method, args[0], args[1]) == ("isContainedIn", "marketplace", ["US", "UK", "DE", "FR", "JP"])
    assert args[2](1.0) and not args[2](0.999)

    method, args, _ = calls["8: hasCompleteness(review_body)"]
    assert (method, args[0]) == ("hasCompleteness", "review_body") and args[1](0.99) and not args[1](0.989)

    method, args, _ = calls["13: satisfies(helpful_votes <= total_votes)"]
    assert (method, args[0], args[1]) == ("satisfies", "helpful_votes <= total_votes", "helpful_votes <= total_votes")

    method, args, _ = calls["15: hasApproxCountDistinct(product_category)"]
    assert method == "hasApproxCountDistinct" and args[1](8) and not args[1](61) and not args[1](0)


def test_multi_column_uniqueness_passes_the_column_list() -> None:
    suite = parse_suite(
        "dataset: t\ncolumns: {a: string, b: string}\n"
        "checks:\n  - {check: hasUniqueness, level: Warning, columns: [a, b], min: 0.9}\n"
    )
    (check,) = build_checks(suite, RecordingCheck)
    method, args, _ = check.calls[0]
    assert (method, args[0], check.level) == ("hasUniqueness", ["a", "b"], "Warning")
    assert args[1](0.95) and not args[1](0.85)


def test_deequ_classpath_settings() -> None:
    assert deequ_spark_conf("/opt/jars/deequ-2.0.18-spark-4.1.jar") == {
        "spark.jars": "/opt/jars/deequ-2.0.18-spark-4.1.jar"
    }
    conf = deequ_spark_conf()
    assert conf["spark.jars.packages"] == deequ_maven_coordinate()
    assert deequ_maven_coordinate().startswith("com.amazon.deequ:deequ:") and "spark-4.1" in deequ_maven_coordinate()
    assert deequ_maven_coordinate("3.5.2").endswith("spark-3.5")
    with pytest.raises(DeequUnavailableError, match="no Deequ build for Spark 2.4"):
        deequ_maven_coordinate("2.4.8")


def test_engine_choice_without_the_jar(spark, caplog) -> None:
    assert not deequ_loaded(spark)
    with pytest.raises(DeequUnavailableError) as error:
        choose_engine("deequ", spark)
    assert "deequ_jar" in str(error.value) and deequ_maven_coordinate() in str(error.value)
    with caplog.at_level(logging.INFO, logger="include.quality.job"):
        assert choose_engine("auto", spark) == "spark"
    assert "quality engine: spark (requested auto; Deequ jar not loadable)" in caplog.text
    assert choose_engine("spark", spark) == "spark"
    with pytest.raises(ValueError, match="engine must be one of"):
        choose_engine("great_expectations", spark)
