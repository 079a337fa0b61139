"""The stack of the browser test: what ``airflow standalone`` runs (api-server, scheduler,
dag-processor, triggerer; LocalExecutor on SQLite) plus the MLflow UI of the local registry, each on
a free loopback port where it listens, with a throw-away AIRFLOW_HOME and data root; headless
Chromium driven by Playwright.

The runs the test triggers from the UI really run: ingestion with its Spark quality gate, then
features, a tiny fine-tuning and the approval. The scheduler creates manual runs only
(``[scheduler] use_job_schedule = False``): no daily ``reviews_ingest`` run, and the asset event of
the test's ingest run starts no ``reviews_train`` run of its own. tests/e2e/seed.py writes the one
run the test does not trigger, a failed ingest run. Every component runs in its own session;
teardown stops them with SIGTERM and fails the test if any process outlives the grace period.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest

from include.registry.mlflow_registry import ui_command
from tests.conftest import migrated_database

REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = REPO / ".artifacts" / "browser-test"
# Closed network: no background or component traffic, no QUIC. Playwright adds --headless and
# the fresh profile folder it is given.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# What `airflow standalone` (3.3.2) starts, each as `airflow <command>`.
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
DAG_IDS = ("reviews_ingest", "reviews_rollout", "reviews_train")
STARTUP_TIMEOUT = 180  # seconds for the API server and the MLflow UI to answer on 2 busy cores
STOP_GRACE = 30  # seconds for every process of a component to go after SIGTERM
UI_TIMEOUT = 20_000  # ms for the UI to show something
LOG_TAIL = 40  # lines of a log quoted in a failure message
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def session_members(session: int) -> dict[int, str]:
    """``pid -> command line`` of the live processes of ``session``, from /proc."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[3]) == session:
                members[int(stat.parent.name)] = (stat.parent / "cmdline").read_text().replace("\0", " ").strip()
        except (OSError, IndexError):
            continue  # it ended while we looked
    return members


def readable(line: str) -> str:
    """A task log's JSON line as ``time level event`` and its exceptions (Spark's progress bars dropped);
    any other line as it is. Cut at 500 characters each."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line[:500]
    if not isinstance(entry, dict) or "event" not in entry:
        return line[:500]
    event = ([part for part in str(entry["event"]).split("\r") if part.strip()] or [""])[-1]
    errors = [f"  {error['exc_type']}: {error['exc_value']}"[:500] for error in entry.get("error_detail") or []]
    return "\n".join([f"{entry.get('timestamp', '')} {entry.get('level', '')} {event}"[:500], *errors])


def tail(path: Path, lines: int = LOG_TAIL) -> str:
    """The last ``lines`` lines of ``path``, readable, or why there are none."""
    if not path.is_file():
        return f"({path} does not exist)"
    return "\n".join(readable(line) for line in path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class UiStack:
    """The running components, their logs, and what the test needs of them.

    :param runs: the test's runs by name: the seeded ``failed_ingest``, then those the test triggers.
    """

    url: str
    mlflow_url: str
    home: Path
    data_root: Path
    runs: dict[str, str]
    password: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _token: str = ""

    def log(self, component: str) -> Path:
        return ARTEFACTS / f"{component}.log"

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call Airflow's REST API as the admin user; the parsed JSON answer."""
        if not self._token:
            login = urllib.request.Request(
                self.url + "/auth/token", method="POST", headers={"Content-Type": "application/json"},
                data=json.dumps({"username": "admin", "password": self.password}).encode(),
            )
            with urllib.request.urlopen(login, timeout=30) as answer:
                self._token = json.load(answer)["access_token"]
        request = urllib.request.Request(
            self.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    def wait_for(self, read: Callable[[], T], done: Callable[[T], bool], timeout: float = UI_TIMEOUT / 1000,
                 explain: Callable[[], str] = str) -> T:
        """Call ``read`` until ``done`` holds for its answer; that answer. On timeout the test fails with the
        last answer and ``explain()`` (for a run: its tasks and the logs that say why)."""
        deadline = time.monotonic() + timeout
        while not done(value := read()):
            if time.monotonic() > deadline:
                pytest.fail(f"still not there after {timeout} s: {value}\n{explain()}")
            time.sleep(0.5)
        return value

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after")["dag_runs"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return {ti["task_id"]: ti["state"] for ti in self.request("GET", path)["task_instances"]}

    def explain_run(self, dag_id: str, run_id: str) -> str:
        """What a stuck or failed run was doing: its task states, the log tails of its tasks that did not
        succeed, the components' health and the scheduler's log tail."""
        states = self.task_states(dag_id, run_id)
        parts = [f"{dag_id} run {run_id}: {states}", f"health: {self.request('GET', '/api/v2/monitor/health')}"]
        logs = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        for log in sorted(logs.glob("task_id=*/attempt=*.log")):
            task_id = log.parent.name.removeprefix("task_id=")
            if states.get(task_id) != "success":
                parts.append(f"--- {task_id} {log.name}:\n{tail(log)}")
        parts.append(f"--- scheduler ({self.log('scheduler')}):\n{tail(self.log('scheduler'))}")
        return "\n".join(parts)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        """Wait for the run to end; fail with :meth:`explain_run` unless it succeeded."""
        run = self.wait_for(lambda: self.dag_run(dag_id, run_id), lambda run: run["state"] in ("success", "failed"),
                            timeout, lambda: self.explain_run(dag_id, run_id))
        assert run["state"] == "success", self.explain_run(dag_id, run_id)
        return run

    def run(self, name: str) -> str:
        """The run id the test stored as ``name``; a clear failure when the step that triggers it did not."""
        if name not in self.runs:
            pytest.fail(f"no {name} run: the test that triggers it failed or did not run")
        return self.runs[name]


def stack_environment(home: Path, data_root: Path, port: int) -> dict[str, str]:
    """The environment of every component and of the seed: private folders, port, secrets shared by the
    components (not each one's own generated default), and the scheduler creating manual runs only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "REVIEWFLOW_"))}
    return env | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "REVIEWFLOW_BACKEND": "local",
        "REVIEWFLOW_DATA_ROOT": str(data_root),
        "PYTHONPATH": f"{REPO}:{REPO / 'plugins'}",
        "PATH": f"{Path(sys.executable).parent}:{env['PATH']}",
    }


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop_sessions(processes: list[subprocess.Popen[bytes]]) -> dict[int, str]:
    """SIGTERM the sessions ``processes`` lead; SIGKILL and return what is left of them after STOP_GRACE s."""
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_GRACE
    while (left := {pid: command for process in processes for pid, command in session_members(process.pid).items()}) \
            and time.monotonic() < deadline:
        for process in processes:
            process.poll()  # reap each leader once it exits
        time.sleep(0.3)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for process in processes:
        process.wait(timeout=STOP_GRACE)
    return left


def start(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``command`` in a session of its own, its output in ``<artefacts>/<name>.log``."""
    with (ARTEFACTS / f"{name}.log").open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_reachable(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not reachable(url):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer (exit {process.returncode}):\n{tail(log)}")
        time.sleep(0.5)


def component_command(component: str, port: int) -> list[str]:
    """``airflow <component>``: the API server on the test's port; the scheduler and triggerer without their
    log servers (fixed ports on every interface), as the API server reads the task logs from AIRFLOW_HOME."""
    options = {"api-server": ["--host", "127.0.0.1", "--port", str(port)], "scheduler": ["--skip-serve-logs"],
               "triggerer": ["--skip-serve-logs"]}
    return ["airflow", component, *options.get(component, [])]


@contextmanager
def live_stack(home: Path) -> Iterator[UiStack]:
    """The Airflow components and the MLflow UI on ``home`` (its ``data/`` the data root), with the seeded
    failed run; all stopped on exit, and a failure if any of their processes had to be killed.

    The seed runs while the components start (the scheduler leaves runs of paused DAGs alone, and new
    DAGs start paused). The MLflow UI starts first: it creates the registry's tables before any task
    opens the store.
    """
    data_root = home / "data"
    port, mlflow_port = free_port(), free_port()
    env = stack_environment(home, data_root, port)
    migrated_database(home, env)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    stack = UiStack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mlflow_port}", home, data_root, {})
    try:
        # MLflow's job runner (GenAI jobs, several huey consumers) is of no use to the registry UI.
        stack.processes["mlflow-ui"] = start("mlflow-ui", [*ui_command(data_root, mlflow_port), "--workers", "1"],
                                             env | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        for component in AIRFLOW_COMPONENTS:
            stack.processes[component] = start(component, component_command(component, port), env)
        runs_file = home / "runs.json"
        with (ARTEFACTS / "seed.log").open("wb") as out:
            # Airflow 3.3.2's dag.test() cannot finish a successful run of a DAG with deadline alerts (the
            # seed's run fails); the components parse the DAGs with them, as `make airflow` does.
            seeded = subprocess.run([sys.executable, "-m", "tests.e2e.seed", str(runs_file)], cwd=REPO,
                                    env=env | {"REVIEWFLOW_DEADLINE_ALERTS": "off"}, stdout=out,
                                    stderr=subprocess.STDOUT, timeout=STARTUP_TIMEOUT)
        assert seeded.returncode == 0, f"tests/e2e/seed.py failed: see {ARTEFACTS / 'seed.log'}"
        stack.runs.update(json.loads(runs_file.read_text()))
        wait_until_reachable(stack.url + "/api/v2/monitor/health", stack.processes["api-server"],
                             stack.log("api-server"))
        wait_until_reachable(stack.mlflow_url + "/health", stack.processes["mlflow-ui"], stack.log("mlflow-ui"))
        stack.password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        stack.wait_for(lambda: sorted(dag["dag_id"] for dag in stack.request("GET", "/api/v2/dags")["dags"]),
                       lambda dags: dags == list(DAG_IDS), STARTUP_TIMEOUT,
                       lambda: f"--- dag-processor:\n{tail(stack.log('dag-processor'))}")
        yield stack
    finally:
        survivors = stop_sessions(list(stack.processes.values()))
    assert not survivors, f"the stack left processes running after SIGTERM (killed now): {survivors}"


@pytest.fixture(scope="module")
def ui_stack(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    """The live stack (:func:`live_stack`) on a private home; its logs are kept beside the screenshots.
    Started only when there is a browser to drive it (``chromium`` skips otherwise)."""
    with live_stack(tmp_path_factory.mktemp("airflow")) as stack:
        yield stack


def chromium_binary() -> str | None:
    """Debian's Chromium: $CHROMIUM (make test sets it from scripts/ensure-chromium.sh), else on PATH."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary, or a skip that says why and how to get one."""
    binary = chromium_binary()
    if not binary:
        pytest.skip("no Chromium for the browser test: run make test as root (it installs Debian's chromium) "
                    "or `sudo apt-get install -y chromium`")
    return binary


@pytest.fixture(scope="module")
def artefacts() -> Path:
    """An empty folder for the screenshots, kept after the test (.artifacts/ is ignored by git)."""
    for old in ARTEFACTS.glob("*.png"):
        old.unlink()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS


@pytest.fixture(scope="module")
def page(ui_stack: UiStack, chromium: str, artefacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A logged-in page of headless Chromium on the stack's UI (one browser for the module)."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=chromium, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 900},
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(UI_TIMEOUT)
            page.goto(ui_stack.url)
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(ui_stack.password)
            page.screenshot(path=str(artefacts / "00-login.png"))
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("link", name="Dags").first).to_be_visible()
            yield page
        finally:
            browser.close()
