"""The replay generator of one rollout run as a detached process: start it once, read its tally, stop it.

Its files live in the run's rollout folder: ``replay.pid`` (pid), ``replay.json`` (the client's tally,
see :class:`include.rollout.replay.ReplayTally`) and ``replay.log``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.processes import is_running, start_detached, terminate_group

MODULE = "include.rollout.replay"
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ReplayStarted:
    pid: int
    already_running: bool


class ReplayProcess:
    """The replay generator whose files are in ``folder`` (a rollout run's folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pid_file = folder / "replay.pid"
        self.progress = folder / "replay.json"
        self.log = folder / "replay.log"

    def running_pid(self) -> int | None:
        """The generator's pid while it runs, else ``None``."""
        if not self.pid_file.is_file():
            return None
        pid = int(self.pid_file.read_text())
        return pid if is_running(pid, MODULE, str(self.progress)) else None

    def tally(self) -> dict[str, Any] | None:
        """The last tally the generator wrote (``None`` before its first)."""
        return json.loads(self.progress.read_text()) if self.progress.is_file() else None

    def start(
        self, *, data_root: Path, endpoint_name: str, replay_dir: Path, snapshot_dir: Path, rate: float,
        concurrency: int, max_requests: int, seed: int,
    ) -> ReplayStarted:
        """Start the generator unless it runs; a finished one is not started again."""
        pid = self.running_pid()
        if pid is not None:
            return ReplayStarted(pid, True)
        tally = self.tally()
        if tally is not None and tally.get("finished"):
            return ReplayStarted(0, True)
        arguments = [
            "--data-root", str(data_root), "--endpoint-name", endpoint_name, "--replay-uri", str(replay_dir),
            "--snapshot-uri", str(snapshot_dir), "--progress", str(self.progress), "--rate", str(rate),
            "--concurrency", str(concurrency), "--max-requests", str(max_requests), "--seed", str(seed),
        ]
        process = start_detached(MODULE, arguments, self.log)
        self.pid_file.write_text(str(process.pid))
        return ReplayStarted(process.pid, False)

    def stop(self) -> bool:
        """Stop the generator's process group; ``False`` if it was not running."""
        pid = self.running_pid()
        if pid is None:
            return False
        terminate_group(pid, STOP_TIMEOUT_S)
        return True
