"""Benchmark: DuckDB ingestion vs. pandas read_csv + to_parquet, on 100k and 1M generated rows.

Writes benchmarks/results/ingest.json. Each measurement runs in a fresh subprocess so its
peak RSS is its own; ours and the baseline alternate on the same gzip TSV, REPEATS times,
and the fastest of each counts (the machine is shared, so the minimum is the least noisy).
Library imports happen before the clock starts, on both sides. Ours does more than the
baseline: it classifies every row, quarantines the bad ones with their reasons and types the
columns; the baseline is the plain pandas idiom.
Targets: speedup >= 3 and peak memory < 2 GB at 1M rows.

The no-validation floor is measured in the same run, alternating with the other two: the same
inflate (ISA-L) and DuckDB parse of the TSV, written as the same partitioned Parquet, with no
classification, quarantine or typing. ``ours_vs_floor`` = ours / floor seconds says what the
validation costs on top of the unavoidable I/O; target <= 1.3.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"
SIZES = (100_000, 1_000_000)
TARGET_SPEEDUP = 3.0
TARGET_OURS_VS_FLOOR = 1.3
KINDS = ("ours", "floor", "baseline")
TARGET_PEAK_RSS_MB = 2048
REPEATS = 3


def run_ours(source: Path, out: Path) -> None:
    from include.ingestion.local import ingest_with_duckdb

    ingest_with_duckdb([source], "tsv", out / "curated", out / "rejected")


def run_floor(source: Path, out: Path) -> None:
    """Inflate, parse and write partitioned Parquet exactly as ours does, but classify nothing."""
    import duckdb

    from include.ingestion.local import readable_copies
    from include.ingestion.sql import duckdb_raw_relation, quote_literal

    con = duckdb.connect(config={"memory_limit": "1GB", "preserve_insertion_order": False})
    try:
        with readable_copies([source], out / ".decompressed") as read_as:
            raw = duckdb_raw_relation("tsv", read_as)
            con.execute(
                f"COPY (SELECT * FROM {raw}) TO {quote_literal(str(out / 'curated'))} "
                "(FORMAT PARQUET, PARTITION_BY (product_category), OVERWRITE_OR_IGNORE)"
            )
    finally:
        con.close()


def run_baseline(source: Path, out: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(source, sep="\t", quoting=csv.QUOTE_NONE, encoding_errors="replace", on_bad_lines="skip")
    frame.to_parquet(out / "curated", partition_cols=["product_category"], index=False)


def import_libraries(kind: str) -> None:
    """Import what ``kind`` uses before the clock starts: a worker pays that once, not per file."""
    if kind in ("ours", "floor"):
        import duckdb  # noqa: F401
        import isal.igzip  # noqa: F401

        import include.ingestion.local  # noqa: F401
    else:
        import pandas  # noqa: F401
        import pyarrow.parquet  # noqa: F401


def measure(kind: str, source: Path) -> dict[str, float]:
    """Run one measurement in this (fresh) process; print seconds and peak RSS as JSON."""
    import_libraries(kind)
    with tempfile.TemporaryDirectory(dir=source.parent) as out:
        start = time.perf_counter()
        {"ours": run_ours, "floor": run_floor, "baseline": run_baseline}[kind](source, Path(out))
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def in_subprocess(kind: str, source: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(source)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    from include.sample_data import SampleSpec, write_sample

    load_average = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory() as work:
        for rows in SIZES:
            source = Path(work) / f"reviews_{rows}.tsv.gz"
            write_sample(source, SampleSpec(rows=rows, seed=1, bad_rows=rows // 1000))
            trials = [{kind: in_subprocess(kind, source) for kind in KINDS} for _ in range(REPEATS)]
            ours, floor, baseline = (min((t[kind] for t in trials), key=lambda m: m["seconds"]) for kind in KINDS)
            runs.append(
                {
                    "rows": rows,
                    "seconds": round(ours["seconds"], 3),
                    "rows_per_s": round(rows / ours["seconds"]),
                    "peak_rss_mb": round(ours["peak_rss_mb"], 1),
                    "baseline_seconds": round(baseline["seconds"], 3),
                    "baseline_rows_per_s": round(rows / baseline["seconds"]),
                    "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
                    "speedup": round(baseline["seconds"] / ours["seconds"], 2),
                    "floor_seconds": round(floor["seconds"], 3),
                    "ours_vs_floor": round(ours["seconds"] / floor["seconds"], 2),
                }
            )
            print(json.dumps(runs[-1]))
    largest = runs[-1]
    report = {
        "benchmark": "ingest",
        "engine": "duckdb",
        "baseline": "pandas read_csv + to_parquet(partition_cols=['product_category'])",
        "floor": "no validation: ISA-L inflate + DuckDB read_csv + COPY to Parquet partitioned by product_category",
        "input": "gzip TSV (the dataset's distribution format), 0.1% malformed rows",
        "repeats": REPEATS,
        "load_average_1m_at_start": round(load_average, 2),
        "runs": runs,
        "targets": {
            "speedup_min": TARGET_SPEEDUP, "peak_rss_mb_max_at_1m": TARGET_PEAK_RSS_MB, "ours_vs_floor_max": TARGET_OURS_VS_FLOOR,
        },
        "meets_targets": largest["speedup"] >= TARGET_SPEEDUP and largest["peak_rss_mb"] < TARGET_PEAK_RSS_MB,
        "meets_floor_target": largest["ours_vs_floor"] <= TARGET_OURS_VS_FLOOR,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}: meets_targets={report['meets_targets']}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2], Path(sys.argv[3]))))
    else:
        main()
