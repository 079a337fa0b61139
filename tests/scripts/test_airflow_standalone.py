"""scripts/airflow-standalone.sh (make airflow): where the API server and the MLflow UI are told to listen.

``airflow`` and ``mlflow`` are stand-ins on PATH that record how they were started and exit at
once: starting the whole standalone stack takes minutes on 2 cores. The real api-server reads
``AIRFLOW__API__HOST``/``AIRFLOW__API__PORT`` as its ``--host``/``--port`` defaults.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Each stand-in records its command line and API settings. "airflow" also starts a task worker in
# a process group of its own (as the executor does), then waits (bounded) until "mlflow" has
# recorded, as the script stops the whole session when airflow exits.
RECORDER = """#!/usr/bin/env python3
import json, os, subprocess, sys, time
worker = None if sys.argv[0].endswith("mlflow") else subprocess.Popen(
    ["sleep", "300"], process_group=0, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
).pid
with open(os.environ["RECORD"], "a") as out:
    env = {k: v for k, v in os.environ.items() if k.startswith(("AIRFLOW__API__", "MLFLOW_SERVER_"))}
    out.write(json.dumps({"argv": sys.argv, "env": env, "worker": worker}) + "\\n")
for _ in range(100):
    if worker is None or len(open(os.environ["RECORD"]).read().splitlines()) >= 2:
        break
    time.sleep(0.1)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def start(tmp_path: Path, **settings: str) -> tuple[dict, dict, str]:
    """Run the script with stand-ins; return how ``airflow`` and ``mlflow`` were started and its output."""
    fakes = tmp_path / "bin"
    fakes.mkdir(exist_ok=True)
    for name in ("airflow", "mlflow"):
        (fakes / name).write_text(RECORDER)
        (fakes / name).chmod(0o755)
    record = tmp_path / "started.jsonl"
    record.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVIEWFLOW_", "AIRFLOW__API__"))}
    env |= {"PATH": f"{fakes}:{env['PATH']}", "RECORD": str(record), "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "REVIEWFLOW_DATA_ROOT": str(tmp_path / "data"), **settings}
    result = subprocess.run(["bash", REPO / "scripts" / "airflow-standalone.sh"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    started = [json.loads(line) for line in record.read_text().splitlines()]
    by_name = {Path(s["argv"][0]).name: s for s in started}
    return by_name["airflow"], by_name["mlflow"], result.stdout


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_binds_loopback_by_default_on_todays_ports_and_stops_every_process(tmp_path: Path) -> None:
    airflow, mlflow, printed = start(tmp_path)
    assert airflow["argv"][1:] == ["standalone"]
    for _ in range(50):  # SIGTERM reaches the worker at once; it may take a moment to go
        if not alive(airflow["worker"]):
            break
        time.sleep(0.1)
    else:
        os.kill(airflow["worker"], signal.SIGKILL)
        pytest.fail("the task worker outlived make airflow")
    assert airflow["env"] == {
        "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": "8080", "AIRFLOW__API__BASE_URL": "http://127.0.0.1:8080",
    }
    assert (option(mlflow["argv"], "--host"), option(mlflow["argv"], "--port")) == ("127.0.0.1", "5000")
    assert mlflow["env"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"  # no GenAI job runner beside the UI
    assert "Starting Airflow on http://127.0.0.1:8080" in printed and "http://127.0.0.1:5000" in printed


def test_ports_and_an_exposed_host_come_from_settings(tmp_path: Path) -> None:
    airflow, mlflow, printed = start(
        tmp_path, REVIEWFLOW_AIRFLOW_HOST="0.0.0.0", REVIEWFLOW_AIRFLOW_PORT="18080", REVIEWFLOW_MLFLOW_PORT="15000"
    )
    assert airflow["env"] == {
        "AIRFLOW__API__HOST": "0.0.0.0", "AIRFLOW__API__PORT": "18080", "AIRFLOW__API__BASE_URL": "http://127.0.0.1:18080",
    }
    assert (option(mlflow["argv"], "--host"), option(mlflow["argv"], "--port")) == ("127.0.0.1", "15000")
    assert "bound to 0.0.0.0:18080" in printed and "http://127.0.0.1:15000" in printed


def test_a_bad_port_stops_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="REVIEWFLOW_AIRFLOW_PORT must be a TCP port"):
        start(tmp_path, REVIEWFLOW_AIRFLOW_PORT="eighty")
    assert not (tmp_path / "started.jsonl").exists()
