"""Benchmark: ``make run`` twice on the same data; the second run reuses the cached steps.

Both runs use a fresh data root of their own (a temporary folder, so the checkout's ``.data/`` is not
touched) and the same generated sample: the first starts with an empty registry (so it also trains the
first champion, as ``make run`` does after install), the second finds every cached step's output
(quality gate, features, training, evaluation) and reuses it. ``second_run_ratio`` = second ÷ first
wall time of the whole ``make run`` (ingest, train, rollout), target ≤ 0.25. The cache status of each
step in the second run is recorded, read from its run summaries. The local endpoint ``make run``
leaves serving is stopped at the end (``make stop``).

Size (small by default, so it fits beside other work on 2 cores): ``--rows`` sample rows (3,000) and
``--conf`` the DAG params of both runs (one epoch on at most 600 training rows, a 1,000-request
rollout budget). Writes ``benchmarks/results/caching.json``.

Run: ``make bench BENCH=caching`` (or ``python benchmarks/caching.py --rows 3000`` with make's
environment).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "caching.json"
LOGS = ROOT / ".build" / "bench-caching"  # each make run's output, kept after the temporary data root is gone
TARGET_RATIO = 0.25
DEFAULT_CONF = {
    "min_rows": 500, "epochs": 1, "max_train_samples": 600, "min_macro_f1": 0.0, "max_f1_drop": 1.0,
    "budget_requests": 1000, "replay_requests": 1400,  # more than the budget: the last round fills
}  # fmt: skip
CACHED_STEPS = ("quality", "features", "training", "evaluation")


def make(target: str, env: dict[str, str], log: Path) -> float:
    """Run ``make <target>`` and return its wall time in seconds; its output goes to ``log``."""
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(["make", target], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        sys.exit(f"make {target} failed (exit {code}); see {log}")
    return time.monotonic() - started


def cache_statuses(data_root: Path, since: float) -> dict[str, str]:
    """``step → hit/miss/off (from run …)`` from the run summaries written after ``since``, and
    ``registry →`` the version the training run ended with and why (a reused model is not registered again)."""
    statuses: dict[str, str] = {}
    for path in sorted((data_root / "reports").glob("*/summary.json"), key=lambda p: p.stat().st_mtime):
        if path.stat().st_mtime < since:
            continue
        summary = json.loads(path.read_text())
        for step in CACHED_STEPS:
            cache = (summary.get(step) or {}).get("cache")
            if cache:
                statuses[step] = cache["status"] + (f" (from run {cache['from_run']})" if cache.get("from_run") else "")
        if registry := summary.get("registry"):
            statuses["registry"] = f"v{registry['version']}: {(registry.get('gate') or {}).get('reason', '')}"
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000, help="rows of the generated sample")
    parser.add_argument("--conf", default=json.dumps(DEFAULT_CONF), help="DAG params of both runs (make run's CONF)")
    args = parser.parse_args()
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-caching-") as tmp:
        data_root = Path(tmp) / "data"
        env = {**os.environ, "REVIEWFLOW_DATA_ROOT": str(data_root), "SAMPLE_ROWS": str(args.rows), "CONF": args.conf}
        try:
            LOGS.mkdir(parents=True, exist_ok=True)
            first = make("run", env, LOGS / "first.log")
            load_average_second = os.getloadavg()[0]
            second_started = time.time()
            second = make("run", env, LOGS / "second.log")
            statuses = cache_statuses(data_root, second_started)
        finally:
            subprocess.run(["make", "stop"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ratio = second / first
    report: dict[str, Any] = {
        "benchmark": "caching",
        "method": "make run twice on one generated sample and a fresh data root; wall time of each whole make run",
        "rows": args.rows,
        "conf": json.loads(args.conf),
        "load_average_1m_at_start": round(load_average, 2),
        "load_average_1m_at_second_start": round(load_average_second, 2),
        "first_run_seconds": round(first, 1),
        "second_run_seconds": round(second, 1),
        "second_run_ratio": round(ratio, 3),
        "target_second_run_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "second_run_cache": statuses,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
