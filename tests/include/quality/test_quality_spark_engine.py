"""Each check type on a six-row DataFrame against values computed by hand with Deequ's definitions."""

from __future__ import annotations

import pytest

from include.quality.results import evaluate_constraint
from include.quality.spark_engine import compute_metrics
from include.quality.suite import parse_suite

ROWS = [
    # id,   cat,  n,    m, s
    ("a", "x", 1, 2, "R12"),
    ("b", "x", 2, 2, "R34"),
    ("b", "y", None, 1, "zz"),
    (None, "y", 4, 3, None),
    ("c", None, 5, 0, "R5"),
    ("d", "z", -1, 1, ""),
]

SUITE = r"""
dataset: t
columns: {id: string, cat: string, n: int, m: int, s: string}
checks:
  - {check: hasSize, level: Error, min: 6, max: 6}
  - {check: isComplete, level: Error, column: id}
  - {check: hasCompleteness, level: Error, column: cat, min: 0.8}
  - {check: isUnique, level: Error, column: id}
  - {check: hasUniqueness, level: Error, column: id, min: 0.6}
  - {check: hasUniqueness, level: Error, columns: [id, cat], min: 1.0}
  - {check: isContainedIn, level: Error, column: cat, values: [x, y]}
  - {check: isContainedIn, level: Warning, column: cat, values: [x, y], min: 0.8}
  - {check: hasMin, level: Error, column: n, min: 0}
  - {check: hasMax, level: Error, column: n, max: 5}
  - {check: hasPattern, level: Error, column: s, pattern: '^R\d+$', min: 0.5}
  - {check: satisfies, level: Error, name: n <= m, columns: [n, m], predicate: n <= m, min: 0.5}
  - {check: hasApproxCountDistinct, level: Error, column: cat, min: 4}
"""

# name → (hand-computed metric, constraint holds?)
EXPECTED = {
    "hasSize(*)": (6.0, True),
    "isComplete(id)": (5 / 6, False),  # one null id
    "hasCompleteness(cat)": (5 / 6, True),
    "isUnique(id)": (0.6, False),  # non-null ids a,b,b,c,d: a,c,d occur once → 3/5
    "hasUniqueness(id)": (0.6, True),
    "hasUniqueness(id,cat)": (1.0, True),  # every (id, cat) pair is distinct; no row is all-null
    "isContainedIn(cat)": (5 / 6, False),  # x,x,y,y,null comply (null does); z does not
    "hasMin(n)": (-1.0, False),
    "hasMax(n)": (5.0, True),
    "hasPattern(s)": (0.5, True),  # R12, R34, R5 match; zz, null, '' do not → 3/6
    "satisfies(n <= m)": (0.5, True),  # 1<=2, 2<=2, -1<=1 true; NULL, 4<=3, 5<=0 not → 3/6
    "hasApproxCountDistinct(cat)": (3.0, False),  # x, y, z
}


@pytest.fixture(scope="module")
def frame(spark):
    return spark.createDataFrame(ROWS, "id string, cat string, n int, m int, s string")


def test_each_check_type_matches_deequ_definitions(frame) -> None:
    suite = parse_suite(SUITE)
    metrics = compute_metrics(frame, suite.metrics())
    results = [evaluate_constraint(c, metrics[c.metric.key]) for c in suite.constraints]
    observed = {}
    for result in results:
        observed.setdefault(result.name, (result.observed, result.status == "Success"))
    assert set(observed) == set(EXPECTED)
    for name, (value, holds) in EXPECTED.items():
        assert observed[name][0] == pytest.approx(value), name
        assert observed[name][1] is holds, name
    warning = [r for r in results if r.level == "Warning"]
    assert [(w.name, w.status) for w in warning] == [("isContainedIn(cat)", "Success")]


def test_empty_metrics_fail_like_deequ(spark) -> None:
    suite = parse_suite(SUITE)
    empty = spark.createDataFrame([], "id string, cat string, n int, m int, s string")
    metrics = compute_metrics(empty, suite.metrics())
    assert metrics["Size(*)"] == 0.0
    assert metrics["Minimum(n)"] is None and metrics["Completeness(id)"] is None
    result = evaluate_constraint(suite.constraints[1], metrics["Completeness(id)"])
    assert result.status == "Failure" and "has no value" in result.message


def test_a_metric_alone_has_the_value_it_has_in_the_single_pass(frame) -> None:
    suite = parse_suite(SUITE)
    together = compute_metrics(frame, suite.metrics())
    for metric in [m for m in suite.metrics() if m.analyzer in ("Uniqueness", "Compliance")][:3]:
        assert compute_metrics(frame, [metric])[metric.key] == pytest.approx(together[metric.key])
