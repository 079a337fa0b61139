"""reviews_ingest end to end through Airflow's dag.test() on the local backend."""

from __future__ import annotations

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

    publish = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "publish")
    assert publish.xcom_pull(task_ids="publish")["summary_uri"] == str(summaries[0])


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
