"""The stack of the browser test: Airflow's own API server (the UI, its REST API and reviewflow's
plugin pages) on a free loopback port with a throw-away AIRFLOW_HOME and data root, the runs it
shows written by tests/e2e/seed.py, and headless Chromium driven by Playwright.

No scheduler runs: a run triggered from a form stays queued, which is all the form test needs, and
the test stays fast (≈ 40 s in all). The API server runs in its own session; teardown stops it
with SIGTERM and fails the test if any process of that session outlives the grace period.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest

from tests.conftest import migrated_database

REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = REPO / ".artifacts" / "browser-test"
# Closed network: no background or component traffic, no QUIC. Playwright adds --headless and
# the fresh profile folder it is given.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
STARTUP_TIMEOUT = 120  # seconds for the API server to answer on 2 busy cores
STOP_GRACE = 30  # seconds for every API server process to go after SIGTERM
UI_TIMEOUT = 20_000  # ms for the UI to show something
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


@dataclass
class UiStack:
    """A running ``airflow api-server`` on seeded runs, and what the test needs of it."""

    url: str
    home: Path
    data_root: Path
    log: Path
    runs: dict[str, str]
    password: str = ""
    _token: str = ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

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

    def wait_for(self, read: Callable[[], T], done: Callable[[T], bool], timeout: float = UI_TIMEOUT / 1000) -> T:
        """Call ``read`` until ``done`` holds for its answer (what the UI sent has landed); that answer."""
        deadline = time.monotonic() + timeout
        while not done(value := read()):
            if time.monotonic() > deadline:
                pytest.fail(f"still not there after {timeout} s: {value}")
            time.sleep(0.3)
        return value

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after")["dag_runs"]

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}")


def stack_environment(home: Path, data_root: Path, port: int) -> dict[str, str]:
    """The environment of the seed and the API server: private folders, port and log servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "REVIEWFLOW_"))}
    return env | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "REVIEWFLOW_BACKEND": "local",
        "REVIEWFLOW_DATA_ROOT": str(data_root),
        "REVIEWFLOW_DEADLINE_ALERTS": "off",  # the seed's dag.test() runs (include/config.py)
        "PYTHONPATH": f"{REPO}:{REPO / 'plugins'}",
        "PATH": f"{Path(sys.executable).parent}:{env['PATH']}",
    }


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop_session(process: subprocess.Popen[bytes]) -> dict[int, str]:
    """SIGTERM the session ``process`` leads; SIGKILL and return what is left after STOP_GRACE s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + STOP_GRACE
    while (left := session_members(process.pid)) and time.monotonic() < deadline:
        process.poll()  # reap the leader once it exits
        time.sleep(0.3)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=STOP_GRACE)
    return left


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    """``airflow api-server`` on a private port, home and data root, with the seeded runs.

    The seed and the server start together (the server reads the DB on each request); their
    output is kept beside the screenshots (``seed.log``, ``api-server.log``).
    """
    home = tmp_path_factory.mktemp("airflow")
    data_root = home / "data"
    port = free_port()
    env = stack_environment(home, data_root, port)
    migrated_database(home, env)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTEFACTS / "api-server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            ["airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        runs_file = home / "runs.json"
        with (ARTEFACTS / "seed.log").open("wb") as out:
            seeded = subprocess.run([sys.executable, "-m", "tests.e2e.seed", str(runs_file)], cwd=REPO, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, timeout=STARTUP_TIMEOUT)
        assert seeded.returncode == 0, f"tests/e2e/seed.py failed: see {ARTEFACTS / 'seed.log'}"
        stack = UiStack(f"http://127.0.0.1:{port}", home, data_root, log, json.loads(runs_file.read_text()))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not reachable(stack.url + "/api/v2/monitor/health"):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"airflow api-server did not start (exit {server.returncode}):\n{stack.log_tail()}")
            time.sleep(0.5)
        stack.password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        yield stack
    finally:
        survivors = stop_session(server)
    assert not survivors, f"airflow api-server left processes running after SIGTERM (killed now): {survivors}"


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

