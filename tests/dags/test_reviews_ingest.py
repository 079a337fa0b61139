"""reviews_ingest end to end through Airflow's dag.test() on the local backend."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb

from include.sample_data import BAD_ROW_KINDS, SampleSpec, write_sample


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_ingest_counts_layout_summary_and_asset(dag_bag, data_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "reviews.tsv.gz"
    written = write_sample(source, SampleSpec(rows=2_000, seed=11, bad_rows=28))
    dag = dag_bag.dags["reviews_ingest"]

    dag_run = dag.test(run_conf={"source_uri": str(source)})

    assert dag_run.state == "success", task_states(dag_run)
    summaries = list((data_root / "reports").glob("*/summary.json"))
    assert len(summaries) == 1
    ingest = json.loads(summaries[0].read_text())["ingest"]
    counts = ingest["counts"]
    assert counts["accepted"] == written["good"] == 1_972
    assert counts["rejected"] == 28 and counts["input_rows"] == 2_000
    assert sum(counts["rejected_by_reason"].values()) == 28
    assert len(counts["rejected_by_reason"]) == len(BAD_ROW_KINDS)

    curated = Path(ingest["curated_uri"])
    assert curated == data_root / "curated" / "reviews" / f"snapshot={ingest['snapshot']}"
    categories = sorted(p.name.removeprefix("product_category=") for p in curated.iterdir())
    assert categories == ["Apparel", "Beauty", "Books", "Electronics", "Home", "Kitchen", "Sports", "Toys"]
    rows = duckdb.sql(f"SELECT count(*), count(DISTINCT review_id) FROM read_parquet('{curated}/*/*.parquet')").fetchall()[0]
    assert rows == (1_972, 1_972)
    rejected = duckdb.sql(f"SELECT count(*) FROM read_parquet('{ingest['rejected_uri']}/*.parquet')").fetchall()[0][0]
    assert rejected == 28
    assert (data_root / "raw" / "reviews" / f"run={ingest['snapshot']}" / "reviews.tsv.gz").exists()

    summary = json.loads(summaries[0].read_text())
    assert summary["quality"]["gate"] == "passed"
    assert Path(summary["quality"]["report_html"]).exists()


def test_quality_gate_failure_stops_the_run_before_publish(dag_bag, data_root: Path, tmp_path: Path) -> None:
    """Duplicated review ids are valid rows for ingestion but fail the gate's isUnique check."""
    sample = tmp_path / "sample.tsv.gz"
    write_sample(sample, SampleSpec(rows=1_500, seed=3))
    lines = gzip.decompress(sample.read_bytes()).splitlines(keepends=True)
    source = tmp_path / "duplicated.tsv"
    source.write_bytes(b"".join(lines + lines[1:301]))
    dag = dag_bag.dags["reviews_ingest"]

    dag_run = dag.test(run_conf={"source_uri": str(source)})

    states = task_states(dag_run)
    assert states["ingest"] == "success"
    assert states["quality_gate"] == "failed" and states["publish"] == "upstream_failed"
    summary = json.loads(next((data_root / "reports").glob("*/summary.json")).read_text())
    assert summary["quality"]["gate"] == "failed"
    assert any("review_id" in name for name in summary["quality"]["failures"])
    assert "publish" not in {ti.task_id for ti in dag_run.get_task_instances() if ti.state == "success"}
    assert Path(summary["quality"]["report_html"]).exists()


def test_too_many_bad_rows_fails_pages_and_publishes_nothing(dag_bag, data_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.tsv.gz"
    write_sample(source, SampleSpec(rows=500, bad_rows=50))
    dag = dag_bag.dags["reviews_ingest"]
    for task in dag.tasks:
        task.retries = 0

    dag_run = dag.test(run_conf={"source_uri": str(source), "max_rejected_share": 0.05})

    states = task_states(dag_run)
    assert states["ingest"] == "failed" and states["publish"] == "upstream_failed"
    assert not list((data_root / "curated").glob("reviews/*"))
    summary = json.loads(next((data_root / "reports").glob("*/summary.json")).read_text())
    assert summary["ingest"]["status"] == "failed"
    assert "above the 5.0% threshold" in summary["ingest"]["error"]
    alerts = [json.loads(line) for line in (data_root / "alerts.jsonl").read_text().splitlines()]
    assert any(a["task_id"] == "ingest" and "threshold" in a["message"] for a in alerts)


def test_missing_source_fails_with_its_path(dag_bag, data_root: Path, tmp_path: Path) -> None:
    dag = dag_bag.dags["reviews_ingest"]
    for task in dag.tasks:
        task.retries = 0
    missing = tmp_path / "nope.tsv.gz"

    dag_run = dag.test(run_conf={"source_uri": str(missing)})

    assert task_states(dag_run)["stage_raw"] == "failed"
    alerts = (data_root / "alerts.jsonl").read_text()
    assert f"{missing}: file not found" in alerts
