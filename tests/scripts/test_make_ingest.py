"""``make ingest SOURCE=…`` on bad inputs, with the real ``airflow dags test``: what the person at the
shell sees, and the page in the alert log.

Three inputs of the corpus (tests/dags/test_bad_inputs.py runs every one): one the trigger form
refuses, one the staging task refuses (a symlink out of the allowed roots, in the folder make allows
for SOURCE), and one whose rows are all quarantined, which the ingest task fails showing the counts
and the reasons. The last two start Airflow (no Spark: the quality gate never runs): about 25 s
each on 2 busy cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.data.make_bad_inputs import BAD, PROBLEMS, SECTION, write_outside_link
from tests.reliability import ReliabilityRecord
from tests.scripts.helpers import make

pytestmark = pytest.mark.reliability


def pages(tmp_path: Path, task_id: str) -> list[str]:
    log = tmp_path / "data" / "alerts" / "alerts.jsonl"
    return [a["message"] for a in map(json.loads, log.read_text().splitlines()) if a.get("task_id") == task_id]


def last_lines(text: str, n: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def test_make_ingest_refuses_a_value_the_trigger_form_refuses(tmp_path: Path, reliability: ReliabilityRecord) -> None:
    reliability.section, reliability.case, reliability.path = SECTION, "reviews.csv", "make ingest"
    reliability.tried = PROBLEMS["reviews.csv"]
    result = make(tmp_path, "ingest", f"SOURCE={BAD / 'reviews.csv'}")
    said = " ".join(line for line in result.stderr.splitlines() if not line.startswith("make: "))
    reliability.outcome = f"make exits {result.returncode} before Airflow starts: {said}"
    assert result.returncode == 2
    assert result.stderr.startswith("error: Invalid input for param source_uri: ") and "reviews.csv" in result.stderr
    assert "TSV, TSV.gz or Parquet" in result.stderr  # the param's description says what is allowed
    assert not (tmp_path / "data" / "reports").exists()


def test_make_ingest_refuses_a_symlink_out_of_the_allowed_roots(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, reliability: ReliabilityRecord
) -> None:
    link = write_outside_link(tmp_path, tmp_path_factory.mktemp("outside-the-roots"))
    reliability.section, reliability.case, reliability.path = SECTION, link.name, "make ingest"
    reliability.tried = "a symlink out of the allowed storage roots (to a good file), in the folder make allows for SOURCE"
    result = make(tmp_path, "ingest", f"SOURCE={link}")
    shown = last_lines(result.stdout, 3)
    reliability.outcome = f"make exits {result.returncode}; it ends: {shown}"
    assert result.returncode != 0
    assert "  ingest: failed" in result.stdout
    assert f"error            {link} (it resolves to {link.resolve()}): outside the allowed storage roots" in shown
    [page] = pages(tmp_path, "stage_raw")
    assert f"Error: OutsideAllowedRootsError: {link} (it resolves to {link.resolve()})" in page
    assert not (tmp_path / "data" / "raw").exists()  # nothing was copied


def test_make_ingest_prints_the_counts_and_reasons_of_a_run_quarantining_too_much(
    tmp_path: Path, reliability: ReliabilityRecord
) -> None:
    source = BAD / "star_rating_floats.tsv"
    reliability.section, reliability.case, reliability.path = SECTION, source.name, "make ingest"
    reliability.tried = PROBLEMS[source.name]
    result = make(tmp_path, "ingest", f"SOURCE={source}", 'CONF={"min_rows": 50}')
    rows = next((line.strip() for line in result.stdout.splitlines() if line.strip().startswith("rows ")), "")
    reliability.outcome = f"make exits {result.returncode}; it prints: {rows}; {last_lines(result.stdout, 2).splitlines()[0].strip()}"
    assert result.returncode != 0
    assert "  ingest: failed" in result.stdout
    assert rows == "rows             100 in = 0 accepted + 0 excluded + 100 rejected"
    assert "100  star_rating: not an integer 1..5" in result.stdout
    [error] = [line for line in result.stdout.splitlines() if line.startswith("    error ")]  # once
    assert f"{source.name}: rejected 100 of 100 rows (100.0%), above the 5.0% threshold" in error
    [page] = pages(tmp_path, "ingest")
    assert "Error: RejectedShareError: " in page and source.name in page
    assert not list((tmp_path / "data" / "curated").glob("reviews/snapshot=*"))  # nothing published
