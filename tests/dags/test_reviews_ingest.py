"""reviews_ingest end to end through Airflow's dag.test() on the local backend."""

from __future__ import annotations

import gzip
import json
import shlex
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest

from include.sample_data import BAD_ROW_KINDS, SampleSpec, write_sample
from reviewflow.links import quality_report_url
from reviewflow.runs import run_key_of
from tests.conftest import files_under, parquet_digest
from tests.dags.helpers import alerts_of, fail_fast_on_regression, task_states
from tests.reliability import ReliabilityRecord


def extra_links(dag_run, task_id: str) -> dict[str, str | None]:
    """The buttons on a task instance's page, from the REST route the UI asks."""
    from airflow.api_fastapi.core_api.routes.public.extra_links import get_extra_links
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    with create_session() as session:
        links = get_extra_links(
            dag_id=dag_run.dag_id, dag_run_id=dag_run.run_id, task_id=task_id, session=session, dag_bag=DBDagBag()
        )
    return links.extra_links


def ingest_outputs(data_root: Path, dag_run) -> dict:
    """What a reviews_ingest run left: counts, the Parquet contents of its datasets, every file, the gate."""
    summary = json.loads((data_root / "reports" / run_key_of(dag_run.run_id) / "summary.json").read_text())
    return {
        "counts": summary["ingest"]["counts"],
        "curated": parquet_digest(Path(summary["ingest"]["curated_uri"])),
        "rejected": parquet_digest(Path(summary["ingest"]["rejected_uri"])),
        "files": sorted(files_under(data_root / "curated")) + sorted(files_under(data_root / "rejected")),
        "raw": files_under(data_root / "raw"),
        "quality": summary["quality"]["gate"],
        "latest": json.loads((data_root / "curated" / "reviews" / "_latest.json").read_text())["snapshot"],
    }


@pytest.mark.reliability
def test_ingest_counts_layout_summary_and_asset(
    dag_bag, data_root: Path, tmp_path: Path, statsd, reliability: ReliabilityRecord
) -> None:
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
    categories = sorted(p.name.removeprefix("product_category=") for p in curated.glob("product_category=*"))
    assert categories == ["Apparel", "Beauty", "Books", "Electronics", "Home", "Kitchen", "Sports", "Toys"]
    rows = duckdb.sql(f"SELECT count(*), count(DISTINCT review_id) FROM read_parquet('{curated}/*/*.parquet')").fetchall()[0]
    assert rows == (1_972, 1_972)
    rejected = duckdb.sql(f"SELECT count(*) FROM read_parquet('{ingest['rejected_uri']}/*.parquet')").fetchall()[0][0]
    assert rejected == 28
    assert (data_root / "raw" / "reviews" / f"run={ingest['snapshot']}" / "reviews.tsv.gz").exists()

    summary = json.loads(summaries[0].read_text())
    assert summary["quality"]["gate"] == "passed"
    assert Path(summary["quality"]["report_html"]).exists()
    assert extra_links(dag_run, "quality_gate") == {"Quality report": quality_report_url("reviews_ingest", dag_run.run_id)}
    metrics = statsd.metrics()  # through Airflow's StatsD backend, to a UDP listener on loopback
    assert metrics["ingest.rows_in"] == ["2000|c"] and metrics["ingest.rows_accepted"] == ["1972|c"]
    assert metrics["ingest.rows_rejected"] == ["28|c"] and metrics["quality.checks_failed"] == ["0|c"]

    # The same run again (the same run id: every task reruns over what it committed): the same outputs.
    reliability.section, reliability.case, reliability.path = "Reruns", "reviews_ingest run twice", "dag.test(), same run id"
    reliability.tried = "every task again over the run's outputs: stage_raw, ingest, quality_gate, publish"
    first = ingest_outputs(data_root, dag_run)
    again = dag.test(logical_date=dag_run.logical_date, run_after=dag_run.run_after, run_conf={"source_uri": str(source)})
    assert again.run_id == dag_run.run_id and again.state == "success", task_states(again)
    assert ingest_outputs(data_root, again) == first
    assert not [name for name in first["files"] if "/." in f"/{name}"]  # no staging or scratch left aside
    reliability.outcome = (
        f"the same {first['curated'][0]} curated and {first['rejected'][0]} quarantined rows (checksums of the Parquet "
        f"contents), the same {len(first['files'])} files, raw copy and counts, gate {first['quality']}, nothing left aside"
    )


def test_quality_gate_failure_stops_the_run_before_publish(dag_bag, data_root: Path, tmp_path: Path, statsd) -> None:
    """A marketplace outside the known ones is a valid row for ingestion but fails the gate's isContainedIn check."""
    sample = tmp_path / "sample.tsv.gz"
    write_sample(sample, SampleSpec(rows=1_500, seed=3))
    lines = gzip.decompress(sample.read_bytes()).splitlines(keepends=True)
    source = tmp_path / "new_marketplace.tsv"
    source.write_bytes(b"".join(lines[:1] + [b"CA" + line[2:] for line in lines[1:301]] + lines[301:]))
    dag = dag_bag.dags["reviews_ingest"]

    dag_run = dag.test(run_conf={"source_uri": str(source)})

    states = task_states(dag_run)
    assert states["ingest"] == "success"
    assert states["quality_gate"] == "failed" and states["publish"] == "upstream_failed"
    summary = json.loads(next((data_root / "reports").glob("*/summary.json")).read_text())
    assert summary["quality"]["gate"] == "failed"
    assert any("marketplace" in name for name in summary["quality"]["failures"])
    assert statsd.metrics()["quality.checks_failed"] == [f"{len(summary['quality']['failures'])}|c"]
    assert "publish" not in {ti.task_id for ti in dag_run.get_task_instances() if ti.state == "success"}
    assert Path(summary["quality"]["report_html"]).exists()
    # A failed gate's report is one click away too: that is when on-call needs it.
    assert extra_links(dag_run, "quality_gate") == {"Quality report": quality_report_url("reviews_ingest", dag_run.run_id)}


def test_too_many_bad_rows_fails_at_once_pages_and_publishes_nothing(dag_bag, data_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.tsv.gz"
    write_sample(source, SampleSpec(rows=500, bad_rows=50))
    dag = dag_bag.dags["reviews_ingest"]
    fail_fast_on_regression(dag)

    dag_run = dag.test(run_conf={"source_uri": str(source), "max_rejected_share": 0.05})

    states = task_states(dag_run)
    assert states["ingest"] == "failed" and states["publish"] == "upstream_failed"
    assert dag_run.get_task_instance("ingest").try_number == 1  # a verdict about the input: no retry
    assert not list((data_root / "curated").glob("reviews/*"))
    summary = json.loads(next((data_root / "reports").glob("*/summary.json")).read_text())
    assert summary["ingest"]["status"] == "failed"
    assert "above the 5.0% threshold set by the param max_rejected_share" in summary["ingest"]["error"]
    assert any("max_rejected_share" in alert["message"] for alert in alerts_of(data_root, "ingest"))


def test_no_rows_in_the_categories_fails_at_once_naming_asked_and_present_ones(
    dag_bag, data_root: Path, tmp_path: Path
) -> None:
    source = tmp_path / "reviews.tsv.gz"
    write_sample(source, SampleSpec(rows=300, seed=4))
    dag = dag_bag.dags["reviews_ingest"]
    fail_fast_on_regression(dag)

    dag_run = dag.test(run_conf={"source_uri": str(source), "categories": ["Bookz"]})

    assert task_states(dag_run)["ingest"] == "failed"
    assert dag_run.get_task_instance("ingest").try_number == 1
    [alert] = alerts_of(data_root, "ingest")
    assert "no rows in the requested categories ['Bookz'] (param categories); the file's 300 valid rows are in " in alert["message"]
    top = Counter(line.split(b"\t")[6].decode() for line in gzip.decompress(source.read_bytes()).splitlines()[1:])
    shown = ", ".join(f"{name} ({rows})" for name, rows in sorted(top.items(), key=lambda item: (-item[1], item[0]))[:5])
    assert f"{shown} and 3 more" in alert["message"]  # the 5 most frequent of 8


def test_missing_source_fails_at_once_and_the_page_reruns_that_run_only(dag_bag, data_root: Path, tmp_path: Path) -> None:
    from airflow.api_fastapi.core_api.datamodels.task_instances import ClearTaskInstancesBody
    from airflow.api_fastapi.core_api.routes.public.task_instances import post_clear_task_instances
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    dag = dag_bag.dags["reviews_ingest"]
    fail_fast_on_regression(dag)
    missing = tmp_path / "nope.tsv.gz"
    earlier = dag.test(run_conf={"source_uri": str(missing)})
    dag_run = dag.test(run_conf={"source_uri": str(missing)})

    for run in (earlier, dag_run):
        assert task_states(run)["stage_raw"] == "failed"
        assert run.get_task_instance("stage_raw").try_number == 1  # failed at once: "file not found" is no transient fault
    page = next(a for a in alerts_of(data_root, "stage_raw") if a["run_id"] == dag_run.run_id)["message"]
    assert f"{missing}: file not found" in page
    assert f"/dags/reviews_ingest/runs/{quote(dag_run.run_id)}" in page  # the run's page in the UI

    # The page's command, sent to the REST route it names: only this run's task (and its downstream) is cleared.
    command = shlex.split(page.splitlines()[-1])
    assert command[:3] == ["curl", "-X", "POST"] and command[3].endswith("/api/v2/dags/reviews_ingest/clearTaskInstances")
    payload = json.loads(command[command.index("-d") + 1])
    with create_session() as session:
        cleared = post_clear_task_instances(
            dag_id="reviews_ingest", dag_bag=DBDagBag(), body=ClearTaskInstancesBody(**payload), session=session, user=None
        )
    assert {(ti.run_id, ti.task_id) for ti in cleared.task_instances} == {
        (dag_run.run_id, task_id) for task_id in ("stage_raw", "ingest", "quality_gate", "publish")
    }
    assert earlier.get_task_instance("stage_raw").state == "failed"
    assert dag_run.get_task_instance("stage_raw").state is None  # cleared: the scheduler runs it again
