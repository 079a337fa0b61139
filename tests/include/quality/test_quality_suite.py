"""Suite YAML → typed constraints, and the errors that name the offending line."""

from __future__ import annotations

import textwrap

import pytest

from include.quality import DEFAULT_SUITE_PATH
from include.quality.suite import SuiteError, load_suite, parse_suite

HEADER = """\
dataset: reviews
params: {min_rows: 100}
columns: {review_id: string, star_rating: int, review_body: string}
checks:
"""


def suite_with(checks: str, extra: str = "") -> str:
    return HEADER + textwrap.indent(textwrap.dedent(checks), "  ") + extra


def test_default_suite_declares_the_issue_checks() -> None:
    suite = load_suite(DEFAULT_SUITE_PATH, {"min_rows": 5000})
    by_name = {c.name: c for c in suite.constraints}
    assert by_name["hasSize(*)"].min_value == 5000
    assert by_name["hasSize(*)"].threshold == ">= 5000 (param min_rows)"  # a failure names what to change
    assert by_name["hasCompleteness(review_body)"].threshold == ">= 0.99"
    assert by_name["isUnique(review_id)"].level == "Error"
    assert by_name["hasCompleteness(review_body)"].min_value == 0.99
    assert by_name["hasMin(star_rating)"].min_value == 1 and by_name["hasMax(star_rating)"].max_value == 5
    assert by_name["isContainedIn(marketplace)"].metric.predicate == (
        "`marketplace` IS NULL OR `marketplace` IN ('US','UK','DE','FR','JP')"
    )
    assert "satisfies(helpful_votes <= total_votes)" in by_name
    assert "satisfies(review_date is a valid date)" in by_name
    assert "isComplete(product_category)" in by_name
    assert [a.name for a in suite.anomalies][0] == "RelativeRateOfChangeStrategy(Size(*))"
    assert suite.bias is not None and suite.bias.labels["neutral"] == (3,)


def test_default_min_rows_comes_from_params() -> None:
    suite = load_suite(DEFAULT_SUITE_PATH)
    assert suite.constraints[0].min_value == 1000


def test_metrics_are_shared_between_checks() -> None:
    suite = parse_suite(
        suite_with("""\
        - {check: isComplete, level: Error, column: review_id}
        - {check: hasCompleteness, level: Warning, column: review_id, min: 0.5}
        """,
            extra="anomalies:\n  - {anomaly: AbsoluteChangeStrategy, metric: Completeness, column: review_id,"
        " maxRateDecrease: -0.1, level: Warning}\n",
        )
    )
    assert [m.key for m in suite.metrics()] == ["Completeness(review_id)"]


@pytest.mark.parametrize(
    ("checks", "line", "fragment"),
    [
        ("- {check: hasMedian, level: Error, column: review_id}\n", 5, "unknown check 'hasMedian'"),
        ("- {check: isComplete, level: Error, column: review_title}\n", 5, "column 'review_title' is not declared"),
        ("- {check: isComplete, level: Error}\n", 5, "missing required key 'column'"),
        (
            "- {check: isComplete, level: Error, column: review_id}\n"
            "- check: hasCompleteness\n  level: Error\n  column: review_body\n  min: 1.5\n",
            9,
            "'min' must be a number in [0, 1]",
        ),
        ("- {check: hasCompleteness, level: Error, column: review_body, min: high}\n", 5, "'min' must be a number"),
        ("- {check: hasCompleteness, level: Error, column: review_body}\n", 5, "needs a threshold"),
        ("- {check: hasMin, level: Error, column: review_body, min: 1}\n", 5, "this check needs int or double"),
        ("- {check: isUnique, level: Error, column: review_id, min: 0.5}\n", 5, "takes no threshold"),
        ("- {check: hasMin, level: Fatal, column: star_rating, min: 1}\n", 5, "'level' must be Error or Warning"),
        ("- {check: hasSize, level: Error, min: 10, max: 5}\n", 5, "greater than 'max'"),
        ("- {check: hasSize, level: Error, min: $max_size}\n", 5, "unknown parameter '$max_size'"),
        ("- {check: hasPattern, level: Error, column: review_id, pattern: '(['}\n", 5, "not a valid regular"),
        ("- {check: isComplete, level: Error, column: review_id, colum: x}\n", 5, "unknown key 'colum'"),
        ("- {check: isComplete, level: Error, column: [review_id}\n", 5, "invalid YAML"),
    ],
)
def test_invalid_suites_name_the_line(checks: str, line: int, fragment: str) -> None:
    with pytest.raises(SuiteError) as error:
        parse_suite(HEADER + textwrap.indent(checks, "  "), "suite.yaml")
    assert f"suite.yaml:{line}:" in str(error.value)
    assert fragment in str(error.value)


def test_unknown_override_parameter_is_rejected() -> None:
    with pytest.raises(SuiteError, match=r"unknown parameter\(s\) \['min_size'\]"):
        parse_suite(suite_with("- {check: hasSize, level: Error, min: $min_rows}\n"), params={"min_size": 3})


def test_anomaly_and_bias_are_validated() -> None:
    bad_anomaly = "anomalies:\n  - {anomaly: OnlineNormalStrategy, metric: Size, level: Error}\n"
    with pytest.raises(SuiteError, match=r"<suite>:7: anomaly #1: unknown anomaly strategy"):
        parse_suite(suite_with("- {check: hasSize, level: Error, min: 1}\n", bad_anomaly))
    bad_bias = "bias:\n  facet: review_id\n  label_column: star_rating\n  labels: {negative: [1, 2], positive: [2]}\n"
    with pytest.raises(SuiteError, match=r"value 2 maps to both 'negative' and 'positive'"):
        parse_suite(suite_with("- {check: hasSize, level: Error, min: 1}\n", bad_bias))


def test_missing_suite_file_is_named(tmp_path) -> None:
    with pytest.raises(SuiteError, match="nope.yaml: cannot read the suite file"):
        load_suite(tmp_path / "nope.yaml")
