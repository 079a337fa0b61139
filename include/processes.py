"""Detached helper processes (the endpoint server, the replay generator): start, check, stop.

A detached process runs in its own session and process group, so it outlives the task or command
that started it, and stopping it reaches everything it started. A pid file alone is not proof that a
process is ours (pids are reused): :func:`is_running` also checks the command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from include.config import REPO_ROOT

# Processes this interpreter started, so stopping one reaps it (no zombie left behind).
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def start_detached(module: str, arguments: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Run ``python -m <module> <arguments>`` from the repository in a new session, output appended to ``log``."""
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *arguments], cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": python_path, **(env or {})},
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    _STARTED[process.pid] = process
    return process


def exited(pid: int) -> bool:
    """Whether ``pid`` is gone (or a zombie)."""
    child = _STARTED.get(pid)
    if child is not None:
        return child.poll() is not None
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def is_running(pid: int, *markers: str) -> bool:
    """Whether ``pid`` is alive and its command line holds every one of ``markers`` (not a reused pid)."""
    import psutil

    if exited(pid):
        return False
    try:
        command = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return all(marker in command for marker in markers)


def terminate_group(pid: int, timeout: float) -> None:
    """SIGTERM the process group led by ``pid`` (it finishes and exits); SIGKILL it after ``timeout`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not exited(pid):
            time.sleep(0.1)
        if exited(pid):
            break
    _STARTED.pop(pid, None)
