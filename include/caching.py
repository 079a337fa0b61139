"""Step caching: what decides a step's output, as one fingerprint, and whether a committed output may be reused.

A cached step (quality gate, feature job, training, evaluation) hashes the content fingerprints of its
inputs (read from their committed manifests or seals, never from the data), its parameters and the
version of its code (the bytes of the files it runs). After its output is committed it writes a
*seal* beside it (the fingerprint, the files, when) and an index entry ``<data root>/cache/<step>/
<fingerprint>.json`` naming that output. A later run with the same fingerprint finds the entry, checks
that the output still carries a seal with that fingerprint and every file it lists, and that it is
younger than the expiry, and reuses it. The seal is removed before a step runs and written only after
its output is committed, so a killed or half-written step leaves no seal and can never be a hit.

Plain functions without Airflow; ``plugins/reviewflow/caching.py`` does the I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from include.errors import BadInputError

# Bump when the meaning of a fingerprint changes: every older seal then misses.
FINGERPRINT_VERSION = 1
STEPS = ("quality", "features", "training", "evaluation")
# SageMaker Pipelines' CacheConfig.ExpireAfter takes ISO 8601 durations such as P30D or PT12H.
DURATION = re.compile(r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?)?$")
CODE_SUFFIXES = (".py", ".yaml", ".yml", ".sql", ".txt", ".json")
# How long a committed output is reused by default (the DAGs' cache_expire_after param).
DEFAULT_EXPIRE_AFTER = "P30D"
# The committed manifest of a curated snapshot, inside its folder: rows, columns, content fingerprint.
SNAPSHOT_MANIFEST = "_manifest.json"


class CacheConfigError(BadInputError):
    """A ``cache_expire_after`` that cannot be read: the run fails at once, without retry."""


def sha256_json(payload: Any) -> str:
    """The sha256 of ``payload`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def code_files(*paths: Path) -> list[Path]:
    """The files under ``paths`` (files as given, folders searched for code and config files), sorted."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.suffix in CODE_SUFFIXES and "__pycache__" not in p.parts)
        else:
            found.add(path)
    return sorted(found)


def code_version(files: Iterable[Path], root: Path) -> str:
    """A hash of the files a step runs: their paths relative to ``root`` and their bytes (any edit changes it)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        name = path.resolve().relative_to(root.resolve()).as_posix() if path.resolve().is_relative_to(root.resolve()) else path.name
        data = path.read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def step_fingerprint(step: str, inputs: Mapping[str, str], params: Mapping[str, Any], code: str) -> str:
    """The fingerprint of one step: its inputs' content fingerprints, its parameters and its code version."""
    return sha256_json({"version": FINGERPRINT_VERSION, "step": step, "inputs": dict(inputs), "params": dict(params), "code": code})


def content_fingerprint(engine: str, columns: Sequence[str], rows: int, row_hash_sum: int) -> str:
    """A dataset's content fingerprint from an order-independent aggregate of its rows (count and sum of row hashes)."""
    return sha256_json({"engine": engine, "columns": list(columns), "rows": rows, "row_hash_sum": str(row_hash_sum)})


def parse_expire_after(value: str | None) -> dt.timedelta | None:
    """An ISO 8601 duration (``P30D``, ``PT12H``, ``P1W``, ``P1DT6H``) as CacheConfig's ``ExpireAfter``; empty: never."""
    text = (value or "").strip().upper()
    if not text:
        return None
    match = DURATION.match(text)
    if not match or text in ("P", "PT"):
        raise CacheConfigError(
            f"cache_expire_after must be an ISO 8601 duration such as P30D, PT12H or P1DT6H (or empty: never), got {value!r}"
        )
    parts = {name: int(number) for name, number in match.groupdict().items() if number}
    return dt.timedelta(**parts)


@dataclass(frozen=True)
class Seal:
    """What a committed step output carries: the fingerprint it was computed for, its files, and who computed it.

    :param output_uri: the folder (or prefix) the files are relative to.
    :param run_key: the run whose output this is.
    :param computed_by: the run that computed it (``run_key`` unless this output was copied from a hit).
    """

    step: str
    fingerprint: str
    output_uri: str
    run_key: str
    computed_by: str
    files: tuple[str, ...]
    committed_at: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "files": list(self.files)}

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Seal:
        return cls(**{**payload, "files": tuple(payload["files"])})

    def age(self, now: dt.datetime) -> dt.timedelta:
        return now - dt.datetime.fromisoformat(self.committed_at)


@dataclass(frozen=True)
class CacheDecision:
    """Whether a step reuses a committed output, and why (logged and recorded in the run summary)."""

    status: Literal["hit", "miss", "off"]
    reason: str
    fingerprint: str | None = None
    seal: Seal | None = None

    def summary(self) -> dict[str, Any]:
        """The ``cache`` entry of the step's run-summary section (and XCom)."""
        entry: dict[str, Any] = {"status": self.status, "reason": self.reason, "fingerprint": self.fingerprint}
        if self.seal is not None:
            entry["from_run"] = self.seal.computed_by
            entry["from_output"] = self.seal.output_uri
        return entry


def decide(
    fingerprint: str,
    indexed: Seal | None,
    committed: Seal | None,
    missing_files: Sequence[str],
    *,
    now: dt.datetime,
    expire_after: dt.timedelta | None,
    force: bool,
) -> CacheDecision:
    """Hit only when the indexed output still carries a seal of ``fingerprint`` with all its files, within the expiry.

    :param indexed: the index entry for ``fingerprint`` (``None``: never computed).
    :param committed: the seal the indexed output carries now (``None``: absent, e.g. a retry is rewriting it).
    :param missing_files: the files of ``committed`` that no longer exist.
    """
    if force:
        return CacheDecision("miss", "force: the cache is bypassed", fingerprint)
    if indexed is None:
        return CacheDecision("miss", "no committed output with this fingerprint", fingerprint)
    if committed is None or committed.fingerprint != fingerprint:
        return CacheDecision("miss", f"{indexed.output_uri} no longer holds the output sealed with this fingerprint", fingerprint)
    if missing_files:
        return CacheDecision("miss", f"{committed.output_uri} lost {len(missing_files)} file(s), e.g. {missing_files[0]}", fingerprint)
    if expire_after is not None and committed.age(now) > expire_after:
        return CacheDecision("miss", f"the output of run {committed.computed_by} expired (older than {expire_after})", fingerprint)
    return CacheDecision("hit", f"reusing the output of run {committed.computed_by}", fingerprint, committed)


def seal_name(step: str) -> str:
    """The seal's file name in the output folder (``_`` keeps Spark and Hive from reading it as data)."""
    return f"_cache-{step}.json"


def index_path(step: str, fingerprint: str) -> str:
    """The index entry of ``fingerprint``, relative to the data root."""
    return f"cache/{step}/{fingerprint}.json"
