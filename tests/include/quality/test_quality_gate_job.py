"""The job end to end on curated snapshots: a bad-data corpus, history and anomalies, bias, reports."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.quality import DEFAULT_SUITE_PATH
from include.quality.bias import bias_metrics, bias_results
from include.quality.history import evaluate_anomalies, previous_record
from include.quality.job import QualityInputError, main, parse_snapshot_uri, run_gate_job
from include.quality.suite import load_suite
from tests.conftest import kill_when, spark_submit_env
from tests.include.quality.quality_data import review_dicts
from tests.reliability import ReliabilityRecord

ROWS = 400


@pytest.fixture
def gate(spark, tmp_path: Path, write_snapshot):
    """``gate(records, snapshot)`` runs the default suite and returns the report."""
    suite = load_suite(DEFAULT_SUITE_PATH, {"min_rows": 20})
    clock = iter(dt.datetime(2026, 11, day, tzinfo=dt.timezone.utc) for day in range(1, 29))

    def run(records: list[dict[str, Any]], snapshot: str = "s1") -> dict[str, Any]:
        return run_gate_job(
            spark,
            suite,
            snapshot_uri=write_snapshot(records, snapshot),
            engine="auto",
            report_prefix=str(tmp_path / "data" / "reports" / snapshot / "quality"),
            metrics_root=str(tmp_path / "data" / "quality" / "metrics"),
            now=next(clock),
        )

    return run


def failed(report: dict[str, Any], kinds: tuple[str, ...] = ("constraint", "anomaly")) -> set[str]:
    return {r["name"] for r in report["results"] if r["status"] == "Failure" and r["kind"] in kinds}


def _duplicate_ids(rows: list[dict[str, Any]]) -> None:
    for i in range(3):
        rows[10 + i]["review_id"] = rows[100 + i]["review_id"]


def _set(column: str, value: Any, count: int = 1):
    def mutate(rows: list[dict[str, Any]]) -> None:
        for row in rows[50 : 50 + count]:
            row[column] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_duplicate_ids, {"isUnique(review_id)"}),
        (_set("star_rating", 0), {"hasMin(star_rating)"}),
        (_set("star_rating", 6), {"hasMax(star_rating)"}),
        (_set("star_rating", None), {"isComplete(star_rating)"}),
        (_set("review_body", "", 10), {"hasPattern(review_body)"}),
        (_set("review_body", None, 10), {"hasCompleteness(review_body)", "hasPattern(review_body)"}),
        (_set("marketplace", "XX"), {"isContainedIn(marketplace)"}),
        (_set("helpful_votes", -1), {"hasMin(helpful_votes)"}),
        (_set("total_votes", -2), {"hasMin(total_votes)", "satisfies(helpful_votes <= total_votes)"}),
        (_set("review_date", dt.date(1990, 1, 1)), {"satisfies(review_date is a valid date)"}),
        (_set("review_id", "not-an-id", 5), {"hasPattern(review_id)", "isUnique(review_id)"}),
    ],
    ids=[
        "duplicate-review-id", "star-0", "star-6", "star-null", "empty-bodies", "null-bodies",
        "unknown-marketplace", "negative-helpful-votes", "negative-total-votes", "date-too-old", "bad-id-pattern",
    ],
)  # fmt: skip
def test_bad_data_fails_the_right_constraint(gate, mutate, expected: set[str]) -> None:
    rows = review_dicts(ROWS)
    mutate(rows)
    report = gate(rows)
    assert failed(report) == expected
    errors = {r["name"] for r in report["results"] if r["status"] == "Failure" and r["level"] == "Error"}
    assert report["passed"] is (not errors)


def test_good_data_passes_and_writes_reports(gate, tmp_path: Path) -> None:
    report = gate(review_dicts(ROWS))
    assert report["passed"] and failed(report, ("constraint", "anomaly", "bias")) == set()
    assert report["engine"] == "spark" and report["metrics"]["Size(*)"] == ROWS
    folder = tmp_path / "data" / "reports" / "s1" / "quality"
    assert json.loads((folder / "report.json").read_text()) == report
    page = (folder / "report.html").read_text()
    assert "PASSED" in page and "isUnique(review_id)" in page and "observed value" in page
    record = json.loads((tmp_path / "data" / "quality" / "metrics" / "reviews" / "s1.json").read_text())
    assert record["snapshot"] == "s1" and record["metrics"]["Uniqueness(review_id)"] == 1.0
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.json"]


def test_a_90_percent_row_count_drop_is_an_error(gate) -> None:
    rows = review_dicts(ROWS)
    assert gate(rows, "s1")["passed"]
    report = gate(rows[: ROWS // 10], "s2")
    assert report["previous_snapshot"] == "s1"
    errors = {r["name"] for r in report["results"] if r["status"] == "Failure" and r["level"] == "Error"}
    assert errors == {"RelativeRateOfChangeStrategy(Size(*))"}
    drop = next(r for r in report["results"] if r["name"] == "RelativeRateOfChangeStrategy(Size(*))")
    assert drop["observed"] == pytest.approx(0.1)
    # A retry of s2 compares with s1 again, not with its own earlier record.
    assert gate(rows[: ROWS // 10], "s2")["previous_snapshot"] == "s1"


def test_a_completeness_drop_is_a_warning(gate) -> None:
    rows = review_dicts(ROWS)
    gate(rows, "s1")
    for row in rows[:4]:
        row["review_body"] = None  # completeness 1 → 0.99: a drop of 0.01, within the allowed 0.02
    for row in rows[4:9]:
        row["star_rating"] = None  # completeness 1 → 0.9875: a drop of 0.0125, over the allowed 0.01
    report = gate(rows, "s2")
    anomalies = {r["name"]: r for r in report["results"] if r["kind"] == "anomaly"}
    failures = {name for name, r in anomalies.items() if r["status"] == "Failure"}
    assert failures == {"AbsoluteChangeStrategy(Completeness(star_rating))"}
    assert anomalies["AbsoluteChangeStrategy(Completeness(star_rating))"]["level"] == "Warning"
    assert anomalies["AbsoluteChangeStrategy(Completeness(star_rating))"]["observed"] == pytest.approx(-0.0125)


def test_anomaly_rules_without_history() -> None:
    suite = load_suite(DEFAULT_SUITE_PATH)
    results = evaluate_anomalies(suite.anomalies, {"Size(*)": 10.0}, None)
    assert {r.status for r in results} == {"Success"}
    assert "no earlier snapshot" in results[0].message
    history = [
        {"snapshot": "a", "recorded_at": "2026-01-01T00:00:00", "metrics": {}},
        {"snapshot": "b", "recorded_at": "2026-01-03T00:00:00", "metrics": {}},
        {"snapshot": "c", "recorded_at": "2026-01-02T00:00:00", "metrics": {}},
    ]
    assert previous_record(history, "b")["snapshot"] == "c"
    assert previous_record(history[1:2], "b") is None


def test_clarify_bias_metrics_by_hand() -> None:
    counts = {"Books": {"positive": 30, "negative": 10}, "Toys": {"positive": 40, "negative": 20}}
    metrics = bias_metrics(counts, ["negative", "neutral", "positive"])
    # CI(Books) = (60 - 40) / 100; DPL(Books, positive) = 40/60 - 30/40.
    assert metrics["Books"]["class_imbalance"] == pytest.approx(0.2)
    assert metrics["Toys"]["class_imbalance"] == pytest.approx(-0.2)
    assert metrics["Books"]["dpl"]["positive"] == pytest.approx(40 / 60 - 30 / 40)
    assert metrics["Books"]["dpl"]["neutral"] == 0.0
    spec = load_suite(DEFAULT_SUITE_PATH).bias
    assert spec is not None
    results = bias_results(metrics, spec)
    assert {r.level for r in results} == {"Warning"} and {r.status for r in results} == {"Success"}
    skewed = bias_metrics(
        {"Books": {"positive": 95, "negative": 5}, "Toys": {"positive": 5, "negative": 95}}, ["negative", "positive"]
    )
    failing = {r.name for r in bias_results(skewed, spec) if r.status == "Failure"}
    assert failing == {
        "DifferenceInProportionsOfLabels(product_category=Books)",
        "DifferenceInProportionsOfLabels(product_category=Toys)",
    }
    single = bias_metrics({"Books": {"positive": 3}}, ["positive"])
    assert single["Books"]["dpl"]["positive"] is None


def test_bias_report_counts_excluded_rows(gate) -> None:
    rows = review_dicts(ROWS)
    rows[0]["star_rating"] = None
    rows[1]["star_rating"] = 9
    report = gate(rows)
    assert report["bias"]["excluded_rows"] == 2
    assert sum(f["rows"] for f in report["bias"]["facets"].values()) == ROWS - 2


def test_inputs_are_checked(spark, tmp_path: Path, write_snapshot) -> None:
    assert parse_snapshot_uri("s3://b/root/curated/reviews/snapshot=2026-11-26/") == ("reviews", "2026-11-26")
    with pytest.raises(QualityInputError, match="not a snapshot folder"):
        parse_snapshot_uri("/data/curated/reviews")
    rows = review_dicts(20)
    for row in rows:
        del row["review_body"]
    suite = load_suite(DEFAULT_SUITE_PATH, {"min_rows": 1})
    folder = tmp_path / "data" / "curated" / "reviews" / "snapshot=s9"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "part.parquet")
    with pytest.raises(QualityInputError, match=r"lacks column\(s\) \['review_body'\]"):
        run_gate_job(
            spark, suite, snapshot_uri=str(folder), engine="spark",
            report_prefix=str(tmp_path / "r"), metrics_root=str(tmp_path / "m"),
        )  # fmt: skip


def test_spark_submit_entry_point(spark, tmp_path: Path, write_snapshot, capsys) -> None:
    uri = write_snapshot(review_dicts(50), "cli")
    code = main(
        [
            "--snapshot-uri", f"file://{uri}",
            "--suite-uri", str(DEFAULT_SUITE_PATH),
            "--report-prefix", f"file://{tmp_path}/reports/cli/quality",
            "--metrics-root", f"file://{tmp_path}/metrics",
            "--engine", "spark",
            "--param", "min_rows=60",
        ]
    )  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["passed"] is False  # 50 rows < min_rows 60
    report = json.loads((tmp_path / "reports" / "cli" / "quality" / "report.json").read_text())
    assert {r["name"] for r in report["results"] if r["status"] == "Failure" and r["level"] == "Error"} == {
        "hasSize(*)"
    }
    assert (tmp_path / "metrics" / "reviews" / "cli.json").exists()


@pytest.mark.reliability
def test_a_kill_while_the_checks_run_leaves_no_report_and_the_retry_completes(
    spark, tmp_path: Path, write_snapshot, reliability: ReliabilityRecord
) -> None:
    reliability.section, reliability.case = "Kills", "quality gate: kill -9 while the checks run"
    reliability.path = "python -m include.quality.job (the spark-submit script; its JVM in the same process group)"
    reliability.tried = "SIGKILL the job's process group once Spark writes its first shuffle file (the checks' aggregations)"
    uri = write_snapshot(review_dicts(2_000), "killed")
    reports, metrics, local_dir = tmp_path / "reports" / "quality", tmp_path / "metrics", tmp_path / "spark-local"
    arguments = ["--snapshot-uri", uri, "--suite-uri", str(DEFAULT_SUITE_PATH), "--report-prefix", str(reports),
                 "--metrics-root", str(metrics), "--engine", "spark", "--param", "min_rows=100"]
    env = spark_submit_env({"spark.local.dir": str(local_dir)})  # a scratch folder to watch
    process = subprocess.Popen([sys.executable, "-m", "include.quality.job", *arguments], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    code = kill_when(process, lambda: any(local_dir.glob("blockmgr-*/*/shuffle_*")))
    assert code == -signal.SIGKILL  # killed while checking, not finished
    assert not reports.exists() and not metrics.exists()  # no report and no history record of the killed try

    assert main(arguments) == 0  # the retry
    report = json.loads((reports / "report.json").read_text())
    assert report["passed"] and report["metrics"]["Size(*)"] == 2_000
    assert sorted(p.name for p in reports.iterdir()) == ["report.html", "report.json"]
    assert [p.name for p in (metrics / "reviews").iterdir()] == ["killed.json"]
    reliability.outcome = (
        f"the killed job exited by SIGKILL leaving no report and no metrics record; the retry wrote the report "
        f"({report['counts']['passed']}/{report['counts']['total']} checks passed on 2,000 rows) and one history record"
    )
