"""``kill -9`` in the middle of the local ingestion, then the retry: the real ``ingest_with_duckdb`` in a
subprocess, killed while it writes the curated snapshot."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from include.ingestion.local import ingest_with_duckdb
from include.sample_data import SampleSpec, write_sample
from tests.conftest import files_under, kill_when, parquet_digest
from tests.reliability import ReliabilityRecord

RUN_DATE = dt.date(2026, 11, 1)
INGEST = (
    "import datetime as dt, sys; from pathlib import Path; from include.ingestion.local import ingest_with_duckdb; "
    "ingest_with_duckdb([Path(sys.argv[1])], 'tsv', Path(sys.argv[2]), Path(sys.argv[3]), "
    f"latest_review_date=dt.date.fromisoformat('{RUN_DATE}'))"
)


@pytest.mark.reliability
def test_a_kill_while_the_snapshot_is_written_leaves_nothing_half_and_the_retry_equals_a_clean_run(
    tmp_path: Path, reliability: ReliabilityRecord
) -> None:
    reliability.section, reliability.case = "Kills", "ingest: kill -9 while the curated snapshot is written"
    reliability.path = "include/ingestion/local.py ingest_with_duckdb in a subprocess"
    reliability.tried = "SIGKILL once the curated snapshot's first Parquet file exists in its staging folder; then the retry"
    source = tmp_path / "reviews.tsv.gz"
    write_sample(source, SampleSpec(rows=150_000, seed=8, bad_rows=150))
    zone = tmp_path / "killed"
    curated, rejected = zone / "curated" / "snapshot=k", zone / "rejected" / "snapshot=k"

    process = subprocess.Popen([sys.executable, "-c", INGEST, str(source), str(curated), str(rejected)], start_new_session=True)
    code = kill_when(process, lambda: any(curated.parent.glob(".snapshot=k.staging-*/*/*.parquet")))
    assert code == -signal.SIGKILL  # killed mid-write, not finished
    assert not curated.exists()  # a reader finds no snapshot, not half of one
    left = sorted(name for name in files_under(zone) if name.startswith("curated/."))
    assert left  # the killed try's staging (and scratch) are there ...

    retried = ingest_with_duckdb([source], "tsv", curated, rejected, latest_review_date=RUN_DATE)
    clean = ingest_with_duckdb(
        [source], "tsv", tmp_path / "clean" / "curated" / "snapshot=k", tmp_path / "clean" / "rejected" / "snapshot=k",
        latest_review_date=RUN_DATE,
    )
    assert retried.counts == clean.counts and retried.counts.accepted == 149_850
    assert parquet_digest(curated) == parquet_digest(clean.curated_dir)
    assert parquet_digest(rejected) == parquet_digest(clean.rejected_dir)
    assert sorted(files_under(zone)) == sorted(files_under(tmp_path / "clean"))  # ... and the retry removed them
    reliability.outcome = (
        f"the killed try exited by SIGKILL with no snapshot visible ({len(left)} staging and scratch files aside); "
        f"the retry committed {retried.counts.accepted} curated and {retried.counts.rejected} quarantined rows, "
        "the same Parquet contents as an uninterrupted run, and removed what the killed try left"
    )
