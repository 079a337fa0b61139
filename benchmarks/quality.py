"""Benchmark: the default quality suite on 1M rows, single-pass engine vs one query per constraint.

Writes ``benchmarks/results/quality.json`` with ``rows``, ``seconds`` (single pass),
``baseline_seconds`` (the same metric definitions, one Spark query per constraint, as a
naive gate would run them) and ``speedup``. Both runs read the same Parquet snapshot in
the same SparkSession after ``WARM_UP_ROUNDS`` untimed rounds of both (a cold JVM flatters
neither side consistently); they alternate ``REPEATS`` times and the fastest of each counts
(the machine is shared, so the minimum is the least noisy); medians are reported too.

Run: ``PYTHONPATH=.:plugins python benchmarks/quality.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as ds

from include.quality import DEFAULT_SUITE_PATH
from include.quality.spark_engine import compute_metrics
from include.quality.suite import load_suite
from include.sample_data import SampleSpec, curated_records, curated_table, generate_rows

RESULTS = Path(__file__).resolve().parent / "results" / "quality.json"
BATCH = 100_000
REPEATS = 5
WARM_UP_ROUNDS = 3


def write_snapshot(folder: Path, rows: int) -> str:
    """A curated-layout snapshot of ``rows`` generated reviews, partitioned by category."""
    snapshot = folder / "curated" / "reviews" / "snapshot=bench"
    generator = generate_rows(SampleSpec(rows, seed=7))
    for part in range(0, rows, BATCH):
        chunk = [next(generator) for _ in range(min(BATCH, rows - part))]
        ds.write_dataset(
            curated_table(curated_records(chunk)),
            snapshot,
            format="parquet",
            partitioning=["product_category"],
            partitioning_flavor="hive",
            basename_template=f"part-{part // BATCH:04d}-{{i}}.parquet",
            existing_data_behavior="overwrite_or_ignore",
        )
    return str(snapshot)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    from include.spark import local_spark_session

    suite = load_suite(DEFAULT_SUITE_PATH, {"min_rows": 1})
    with tempfile.TemporaryDirectory(prefix="quality-bench-") as folder:
        started = time.perf_counter()
        uri = write_snapshot(Path(folder), args.rows)
        print(f"wrote {args.rows} rows in {time.perf_counter() - started:.1f}s")
        spark = local_spark_session("reviewflow-bench-quality", {"spark.ui.showConsoleProgress": "false"})
        df = spark.read.parquet(uri)
        metrics = suite.metrics()

        def baseline_run() -> dict[str, float | None]:
            values: dict[str, float | None] = {}
            for constraint in suite.constraints:
                values.update(compute_metrics(df, [constraint.metric]))
            return values

        for _ in range(WARM_UP_ROUNDS):  # the JVM keeps compiling hot code for a few runs
            baseline_run()
            compute_metrics(df, metrics)

        baseline_times, single_times = [], []
        for _ in range(REPEATS):
            started = time.perf_counter()
            baseline = baseline_run()
            baseline_times.append(time.perf_counter() - started)

            started = time.perf_counter()
            single = compute_metrics(df, metrics)
            single_times.append(time.perf_counter() - started)
        spark.stop()
        seconds, baseline_seconds = min(single_times), min(baseline_times)
        median_seconds, median_baseline_seconds = statistics.median(single_times), statistics.median(baseline_times)

    mismatched = [key for key in baseline if baseline[key] != single[key] and "ApproxCountDistinct" not in key]
    if mismatched:
        raise SystemExit(f"single-pass and baseline metrics differ: {mismatched}")
    result = {
        "rows": args.rows,
        "constraints": len(suite.constraints),
        "metrics": len(metrics),
        "seconds": round(seconds, 3),
        "baseline_seconds": round(baseline_seconds, 3),
        "speedup": round(baseline_seconds / seconds, 2),
        "median_seconds": round(median_seconds, 3),
        "median_baseline_seconds": round(median_baseline_seconds, 3),
        "median_speedup": round(median_baseline_seconds / median_seconds, 2),
        "target_speedup": 3.0,
        "repeats": REPEATS,
        "warm_up_rounds": WARM_UP_ROUNDS,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
