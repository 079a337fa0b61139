"""What the make-target tests share: running make on a data root of the test's own, optionally with a
stand-in ``airflow`` that records its command line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["RECORD"], "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def make(tmp_path: Path, *args: str, fake_airflow: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVIEWFLOW_", "MAKE"))}
    env |= {"REVIEWFLOW_DATA_ROOT": str(tmp_path / "data"), "RECORD": str(tmp_path / "airflow.jsonl")}
    command = ["make", "--no-print-directory", "-C", str(REPO), *args]
    if fake_airflow:
        fakes = tmp_path / "bin"
        fakes.mkdir(exist_ok=True)
        (fakes / "airflow").write_text(RECORDER)
        (fakes / "airflow").chmod(0o755)
        # PATH on make's command line replaces the Makefile's (venv first), so the stand-in is found first.
        command.append(f"PATH={fakes}:{REPO / '.venv' / 'bin'}:{env['PATH']}")
        summary_file = tmp_path / "data" / "reports" / "manual__1" / "summary.json"
        summary_file.parent.mkdir(parents=True, exist_ok=True)
        summary_file.write_text(json.dumps({"run_key": "manual__1"}))  # what show_summary.py prints afterwards
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
