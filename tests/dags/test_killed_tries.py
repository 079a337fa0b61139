"""A try whose task process is killed (``kill -9``, the OOM killer) runs no callback: it still pages.

The tries run under Airflow's real supervisor (tests/dags/supervised_tries.py), as on a worker; the
test kills the forked task process of each try, as the kernel would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import migrated_database

REPO = Path(__file__).resolve().parents[2]
# A task with reviewflow's default arguments (its callbacks) and one retry, which records its pid and
# waits to be killed.
DAG_FILE = '''
import datetime as dt
import os
import time
from pathlib import Path

from airflow.sdk import DAG, get_current_context, task

from reviewflow.dag_defaults import DEFAULT_ARGS

with DAG("killed_tries", schedule=None, default_args={**DEFAULT_ARGS, "retries": 1, "retry_delay": dt.timedelta(0)}):
    @task
    def work() -> None:
        ti = get_current_context()["ti"]
        Path(os.environ["PID_DIR"], f"try-{ti.try_number}").write_text(str(os.getpid()))
        time.sleep(600)

    work()
'''


def kill_when_started(pid_file: Path, driver: subprocess.Popen, timeout: float = 240) -> None:
    """SIGKILL the task process that wrote ``pid_file`` once it exists."""
    deadline = time.monotonic() + timeout
    while not pid_file.exists():
        assert driver.poll() is None, driver.communicate()
        assert time.monotonic() < deadline, f"{pid_file.name} never started"
        time.sleep(0.2)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_killed_try_pages_from_the_next_try_and_the_last_one_from_the_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reviewflow.notifiers import page_dag_run_failure

    home, dags, pids, data = (tmp_path / name for name in ("airflow", "dags", "pids", "data"))
    for folder in (home, dags, pids):
        folder.mkdir()
    (dags / "killed_tries.py").write_text(DAG_FILE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "REVIEWFLOW_"))} | {
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": f"{REPO}:{REPO / 'plugins'}", "PID_DIR": str(pids),
        "REVIEWFLOW_DATA_ROOT": str(data), "REVIEWFLOW_ALERT_LOG": str(data / "alerts.jsonl"),
    }
    migrated_database(home, env)

    with subprocess.Popen(
        [sys.executable, "-m", "tests.dags.supervised_tries", "killed_tries", "work", "2"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    ) as driver:
        try:
            kill_when_started(pids / "try-1", driver)
            kill_when_started(pids / "try-2", driver)
            out, _ = driver.communicate(timeout=120)
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
    tries = [json.loads(line) for line in out.splitlines() if line.startswith('{"run_id"')]  # Airflow logs there too
    assert [(t["try"], t["exit_code"]) for t in tries] == [(1, -signal.SIGKILL), (2, -signal.SIGKILL)], tries

    # No callback ran in either try; try 2 paged for try 1 as it started.
    [page] = [json.loads(line) for line in (data / "alerts.jsonl").read_text().splitlines()]
    assert page["title"] == "[reviewflow] killed_tries.work failed" and page["try_number"] == 1
    assert page["error"].startswith("Killed: the task process ended without reporting")
    assert "(try 1 of 2, Airflow retries it)" in page["message"] and "try_number=1" in page["log_url"]

    # The last try has no next try: the run's failure page (the DAG processor calls it) names it.
    monkeypatch.setenv("REVIEWFLOW_ALERT_LOG", str(data / "alerts.jsonl"))
    page_dag_run_failure({"dag_run": SimpleNamespace(dag_id="killed_tries", run_id=tries[0]["run_id"]), "reason": "task_failure"})
    run_page = json.loads((data / "alerts.jsonl").read_text().splitlines()[-1])
    assert "Ended without reporting (killed: out of memory, kill -9, or stopped from outside): work try 1, work try 2" in run_page["message"]
