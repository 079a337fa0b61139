"""Atomic commits of local output folders: build aside, then swap into place."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield an empty sibling folder of ``final``; on success it replaces ``final``.

    A retry that fails half-way leaves ``final`` as it was (or absent) and removes its
    own staging folder; a retry that succeeds replaces the previous attempt's output. What a
    killed attempt left beside ``final`` (its staging or retired folder: a ``kill -9`` runs no
    cleanup) is removed first: one attempt at a time writes a given ``final``.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    for leftover in [*final.parent.glob(f".{final.name}.staging-*"), *final.parent.glob(f".{final.name}.retired-*")]:
        shutil.rmtree(leftover, ignore_errors=True)
    staging = final.with_name(f".{final.name}.staging-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        yield staging
        replace_directory(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_directory(source: Path, final: Path) -> None:
    """Move ``source`` to ``final``, replacing any previous ``final`` with two renames."""
    retired = final.with_name(f".{final.name}.retired-{uuid.uuid4().hex[:8]}")
    if final.exists():
        os.replace(final, retired)
    os.replace(source, final)
    shutil.rmtree(retired, ignore_errors=True)


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically and durably: a synced sibling temp file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
