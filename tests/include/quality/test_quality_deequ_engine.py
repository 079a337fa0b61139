"""Suite → PyDeequ translation recorded call by call, Deequ's result frames mapped back (hand-made: the Deequ
jar cannot be loaded here), and where the local gate gets Deequ from."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from include.quality import DEFAULT_SUITE_PATH
from include.quality.deequ_engine import (
    DeequSource,
    DeequUnavailableError,
    build_checks,
    cached_deequ_jar,
    deequ_loaded,
    deequ_maven_coordinate,
    local_deequ_source,
    run_deequ,
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
    suite = load_suite(DEFAULT_SUITE_PATH, {"min_rows": 1000})
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


def test_local_deequ_source_uses_a_configured_or_cached_jar_and_never_downloads_for_auto(tmp_path: Path) -> None:
    coordinate = deequ_maven_coordinate()
    assert coordinate.startswith("com.amazon.deequ:deequ:") and "spark-4.1" in coordinate
    assert deequ_maven_coordinate("3.5.2").endswith("spark-3.5")
    with pytest.raises(DeequUnavailableError, match="no Deequ build for Spark 2.4"):
        deequ_maven_coordinate("2.4.8")

    home = tmp_path / "home"
    assert local_deequ_source("spark", None, home) is None
    assert local_deequ_source("auto", None, home) is None  # nothing local: no Deequ, no Maven attempt
    fetched = local_deequ_source("deequ", None, home)  # asked for explicitly: Spark fetches it
    assert fetched is not None and fetched.spark_conf["spark.jars.packages"] == coordinate

    configured = tmp_path / "deequ.jar"
    configured.write_bytes(b"PK")
    assert local_deequ_source("auto", str(configured), home) == DeequSource(
        {"spark.jars": str(configured)}, f"the configured jar {configured}"
    )
    assert local_deequ_source("deequ", "s3://jars/deequ.jar", home).spark_conf == {"spark.jars": "s3://jars/deequ.jar"}
    with pytest.raises(DeequUnavailableError, match="does not exist"):
        local_deequ_source("auto", str(tmp_path / "missing.jar"), home)

    _, artifact, version = coordinate.split(":")
    for cached in (
        home / ".ivy2.5.2" / "jars" / f"com.amazon.deequ_{artifact}-{version}.jar",
        home / ".ivy2" / "cache" / "com.amazon.deequ" / artifact / "jars" / f"{artifact}-{version}.jar",
        home / ".m2" / "repository" / "com" / "amazon" / "deequ" / artifact / version / f"{artifact}-{version}.jar",
    ):
        cached.parent.mkdir(parents=True)
        cached.write_bytes(b"PK")
        assert cached_deequ_jar(coordinate, home) == cached
        assert local_deequ_source("auto", None, home) == DeequSource({"spark.jars": str(cached)}, f"the cached jar {cached}")
        cached.unlink()


def test_engine_choice_logs_one_line_with_the_reason(spark, caplog) -> None:
    assert not deequ_loaded(spark)
    with pytest.raises(DeequUnavailableError) as error:
        choose_engine("deequ", spark)
    assert "deequ_jar" in str(error.value) and deequ_maven_coordinate() in str(error.value)
    with caplog.at_level(logging.INFO, logger="include.quality.job"):
        assert choose_engine("auto", spark, deequ_from=None) == "spark"
        assert choose_engine("auto", spark, deequ_from="the cached jar /c/deequ.jar") == "spark"
        assert choose_engine("spark", spark) == "spark"
    assert caplog.messages == [
        "quality engine: spark (requested auto; no Deequ jar configured (REVIEWFLOW_DEEQU_JAR) or in the local "
        "Ivy/Maven caches; no download tried)",
        "quality engine: spark (requested auto; Deequ did not load from the cached jar /c/deequ.jar)",
        "quality engine: spark (requested spark; built-in engine chosen)",
    ]
    with pytest.raises(ValueError, match="engine must be one of"):
        choose_engine("great_expectations", spark)


# --- run_deequ: Deequ's result frames mapped back to the suite (hand-made frames; no jar here) ---

SMALL_SUITE = """\
dataset: reviews
params: {min_rows: 10}
columns: {review_id: string, star_rating: int, marketplace: string}
checks:
  - {check: hasSize, level: Error, min: $min_rows}
  - {check: isUnique, level: Error, column: review_id}
  - {check: isContainedIn, level: Error, column: marketplace, values: [US, UK]}
  - {check: hasPattern, level: Warning, column: review_id, pattern: '^R', min: 0.9}
  - {check: hasMax, level: Error, column: star_rating, max: 5}
"""

# checkResultsAsDataFrame: one row per Check (our description), in Deequ's order, not ours.
CHECK_ROWS = [
    ("4: hasMax(star_rating)", "Error", "Failure", "MaximumConstraint(Maximum(star_rating,None,None))", "Failure",
     "Can't execute the assertion: column star_rating has no value!"),
    ("0: hasSize(*)", "Error", "Failure", "SizeConstraint(Size(None))", "Failure",
     "Value: 8 does not meet the constraint requirement! hasSize(*), line 5"),
    ("2: isContainedIn(marketplace)", "Error", "Failure",
     "ComplianceConstraint(Compliance(marketplace contained in US,UK,`marketplace` IS NULL OR `marketplace` IN ('US','UK'),None,List(marketplace),None))",
     "Failure", "Value: 0.75 does not meet the constraint requirement! isContainedIn(marketplace), line 7"),
    ("1: isUnique(review_id)", "Error", "Success", "UniquenessConstraint(Uniqueness(List(review_id),None,None))", "Success", ""),
    ("3: hasPattern(review_id)", "Warning", "Success", "PatternMatchConstraint(review_id, ^R)", "Success", ""),
]
# successMetricsAsDataFrame: Maximum(star_rating) failed to compute, so Deequ lists no value for it.
METRIC_ROWS = [
    ("Dataset", "*", "Size", 8.0),
    ("Column", "review_id", "Uniqueness", 1.0),
    ("Column", "marketplace contained in US,UK", "Compliance", 0.75),
    ("Column", "review_id", "PatternMatch", 0.95),
]


def fake_pydeequ(monkeypatch: pytest.MonkeyPatch, check_rows: list[tuple], metric_rows: list[tuple]) -> list[Any]:
    """Replace PyDeequ's JVM-backed entry points; return the checks the run added."""
    import pandas as pd
    import pydeequ.checks
    import pydeequ.verification

    added: list[Any] = []

    class Builder:
        def addCheck(self, check: Any) -> Builder:
            added.append(check)
            return self

        def run(self) -> str:
            return "verification outcome"

    class Suite:
        def __init__(self, spark: Any) -> None:
            pass

        def onData(self, df: Any) -> Builder:
            return Builder()

    class Result:
        @staticmethod
        def checkResultsAsDataFrame(spark: Any, outcome: str, pandas: bool = False) -> pd.DataFrame:
            assert (outcome, pandas) == ("verification outcome", True)
            columns = ["check", "check_level", "check_status", "constraint", "constraint_status", "constraint_message"]
            return pd.DataFrame(check_rows, columns=columns)

        @staticmethod
        def successMetricsAsDataFrame(spark: Any, outcome: str, pandas: bool = False) -> pd.DataFrame:
            assert (outcome, pandas) == ("verification outcome", True)
            return pd.DataFrame(metric_rows, columns=["entity", "instance", "name", "value"])

    monkeypatch.setattr("include.quality.deequ_engine.deequ_loaded", lambda spark: True)
    monkeypatch.setattr(pydeequ.checks, "Check", lambda spark, level, text: RecordingCheck(level.value, text))
    monkeypatch.setattr(pydeequ.verification, "VerificationSuite", Suite)
    monkeypatch.setattr(pydeequ.verification, "VerificationResult", Result)
    return added


def test_run_deequ_maps_the_result_frames_back_to_each_constraint(monkeypatch: pytest.MonkeyPatch) -> None:
    suite = parse_suite(SMALL_SUITE, "small.yaml")
    added = fake_pydeequ(monkeypatch, CHECK_ROWS, METRIC_ROWS)

    results, metrics = run_deequ(object(), object(), suite)

    assert [check.description for check in added] == [text for text, *_ in sorted(CHECK_ROWS)]
    assert metrics == {
        "Size(*)": 8.0, "Uniqueness(review_id)": 1.0, "Compliance(marketplace contained in US,UK)": 0.75,
        "PatternMatch(review_id)": 0.95,
    }
    table = [(r.name, r.level, r.status, r.metric, r.observed, r.threshold, r.line) for r in results]
    assert table == [
        ("hasSize(*)", "Error", "Failure", "Size(*)", 8.0, ">= 10 (param min_rows)", 5),
        ("isUnique(review_id)", "Error", "Success", "Uniqueness(review_id)", 1.0, "== 1", 6),
        ("isContainedIn(marketplace)", "Error", "Failure", "Compliance(marketplace contained in US,UK)", 0.75, "== 1", 7),
        ("hasPattern(review_id)", "Warning", "Success", "PatternMatch(review_id)", 0.95, ">= 0.9", 8),
        ("hasMax(star_rating)", "Error", "Failure", "Maximum(star_rating)", None, "<= 5", 9),
    ]
    assert all(r.kind == "constraint" for r in results)
    assert results[0].message == "Value: 8 does not meet the constraint requirement! hasSize(*), line 5"
    assert results[1].message == "" and "has no value" in results[4].message


def test_run_deequ_names_checks_missing_from_the_results(monkeypatch: pytest.MonkeyPatch) -> None:
    suite = parse_suite(SMALL_SUITE, "small.yaml")
    fake_pydeequ(monkeypatch, CHECK_ROWS[1:], METRIC_ROWS)
    with pytest.raises(RuntimeError, match=r"no result for check\(s\) \['4: hasMax\(star_rating\)'\] of small.yaml"):
        run_deequ(object(), object(), suite)
