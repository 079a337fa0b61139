"""Trigger params cannot inject SQL or make a run read outside the allowed storage roots.

Categories are refused on the trigger form when they hold anything but a category name (and reach
the SQL only as quoted literals even when the form is bypassed: tests/include/ingestion). A
``source_uri`` or ``curated_uri`` outside ``REVIEWFLOW_ALLOWED_ROOTS`` fails the run's first task at
once, before anything is read. Each case writes a record for docs/reliability.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability import ReliabilityRecord

pytestmark = pytest.mark.reliability
SECTION = "Security"


@pytest.mark.parametrize(
    ("dag_id", "categories"),
    [
        ("reviews_ingest", ["Books') OR TRUE OR ('"]),
        ("reviews_ingest", ["Books", "x'; DROP TABLE reviews_curated; --"]),
        ("reviews_train", ["Toys\" OR 1=1 --"]),
        ("reviews_train", ["Books,Toys"]),  # a comma would split into two categories on the EMR command line
    ],
)
def test_categories_holding_sql_are_refused_before_any_task_runs(
    dag_bag, data_root: Path, dag_id: str, categories: list[str], reliability: ReliabilityRecord
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    reliability.section, reliability.case, reliability.path = SECTION, f"{dag_id} categories={categories}", "dag.test()"
    reliability.tried = "SQL, quotes or a comma in the categories param"
    with pytest.raises(ParamValidationError) as refused:
        dag_bag.dags[dag_id].test(run_conf={"categories": categories})
    reliability.outcome = f"refused by the trigger form, no run: {str(refused.value).splitlines()[0]}"
    assert str(refused.value).startswith("Invalid input for param categories: ")
    assert not (data_root / "reports").exists()


@pytest.mark.parametrize(
    ("dag_id", "param", "location", "task_id"),
    [
        ("reviews_ingest", "source_uri", "{root}/../../../../../../../../etc/reviews.tsv", "stage_raw"),
        ("reviews_ingest", "source_uri", "s3://another-bucket/reviews.tsv.gz", "stage_raw"),
        ("reviews_train", "curated_uri", "/etc", "resolve_snapshot"),
    ],
)
def test_a_location_outside_the_allowed_roots_fails_the_first_task_at_once(
    dag_bag, data_root: Path, dag_id: str, param: str, location: str, task_id: str, reliability: ReliabilityRecord
) -> None:
    given = location.format(root=data_root)
    reliability.section, reliability.case, reliability.path = SECTION, f"{dag_id} {param}={location}", "dag.test()"
    reliability.tried = f"a {param} outside the allowed storage roots"
    dag_run = dag_bag.dags[dag_id].test(run_conf={param: given})
    alerts = [json.loads(line) for line in (data_root / "alerts.jsonl").read_text().splitlines()]
    [page] = [a["message"] for a in alerts if a.get("task_id") == task_id]
    reason = next(line for line in page.splitlines() if line.startswith("Error: "))
    reliability.outcome = f"{task_id} failed, try {dag_run.get_task_instance(task_id).try_number}: " + reason.removeprefix("Error: ")
    assert dag_run.get_task_instance(task_id).state == "failed" and dag_run.get_task_instance(task_id).try_number == 1
    assert reason.startswith(f"Error: OutsideAllowedRootsError: {given}")
    assert f"outside the allowed storage roots {data_root.parent} (param {param})" in reason
    assert not (data_root / "raw").exists()
