"""Step caching for the expensive operators: reuse a committed output with the same fingerprint, or compute and seal it.

The rules (fingerprints, when a seal counts, expiry) are :mod:`include.caching`'s; this module reads and
writes seals and index entries through the run's storage and says what happened: a task-log line, the
``cache`` entry of the step's run-summary section and of its XCom (``status`` hit/miss/off, ``from_run``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from include.caching import (
    DEFAULT_EXPIRE_AFTER,
    SNAPSHOT_MANIFEST,
    CacheDecision,
    Seal,
    code_files,
    code_version,
    decide,
    index_path,
    parse_expire_after,
    seal_name,
    step_fingerprint,
)
from include.config import REPO_ROOT, Settings
from include.uris import join_uri
from reviewflow.backends import storage_for
from reviewflow.run_summary import read_run_summary, update_run_summary

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_EXPIRE_AFTER", "StepCache", "sealed_fingerprint", "snapshot_fingerprint"]


class StepCache:
    """The cache of one step's output in one run: ``output_uri`` is where this run's output is committed.

    :param aws_conn_id: the connection of every read and write on S3.
    :param files: the step's files relative to ``output_uri`` when it shares the folder with another step
        (evaluation beside the model); ``None``: every file under it.
    :param region_name: the region of the S3 calls; ``None``: the connection's.
    """

    def __init__(
        self,
        settings: Settings,
        step: str,
        output_uri: str,
        run_key: str,
        aws_conn_id: str | None,
        *,
        files: Sequence[str] | None = None,
        region_name: str | None = None,
    ) -> None:
        self.settings = settings
        self.step = step
        self.output_uri = output_uri
        self.run_key = run_key
        self.files = tuple(files) if files is not None else None
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def _storage(self, uri: str) -> Any:
        return storage_for(uri, self.aws_conn_id, region_name=self.region_name)

    def read_seal(self, output_uri: str) -> Seal | None:
        """The seal a committed output carries, or ``None``."""
        uri = join_uri(output_uri, seal_name(self.step))
        storage = self._storage(uri)
        return Seal.from_json(storage.read_json(uri)) if storage.exists(uri) else None

    def decide(
        self,
        inputs: Mapping[str, tuple[str | None, str]],
        params: Mapping[str, Any],
        code_paths: Sequence[Path],
        *,
        force: bool,
        expire_after: str | None,
    ) -> CacheDecision:
        """Fingerprint the step and look it up in the index, checking the output the entry names.

        :param inputs: name → (content fingerprint, or ``None`` and why there is none): caching is off without one.
        :param code_paths: the files and folders the step runs (their bytes are its code version).
        """
        expiry = parse_expire_after(expire_after)
        for fingerprint_or_none, why in inputs.values():
            if fingerprint_or_none is None:
                return CacheDecision("off", why)
        code = code_version(code_files(*code_paths), REPO_ROOT)
        fingerprint = step_fingerprint(self.step, {name: fp for name, (fp, _) in inputs.items()}, params, code)  # type: ignore[misc]
        index_uri = join_uri(self.settings.data_root, index_path(self.step, fingerprint))
        storage = self._storage(index_uri)
        indexed = committed = None
        missing: list[str] = []
        if not force and storage.exists(index_uri):
            indexed = Seal.from_json(storage.read_json(index_uri))
            committed = self.read_seal(indexed.output_uri)
            if committed is not None:
                present = set(self._storage(committed.output_uri).list_files(committed.output_uri))
                missing = [name for name in committed.files if name not in present]
        return decide(
            fingerprint, indexed, committed, missing, now=dt.datetime.now(dt.UTC), expire_after=expiry, force=force
        )

    def unseal(self) -> None:
        """Remove this run's seal before the step (re)writes its output: a half-written output carries none."""
        uri = join_uri(self.output_uri, seal_name(self.step))
        self._storage(uri).delete(uri)

    def seal(self, fingerprint: str, computed_by: str | None = None) -> Seal:
        """Seal this run's committed output with ``fingerprint``; index it when this run computed it."""
        present = self._storage(self.output_uri).list_files(self.output_uri)
        files = [name for name in present if not name.startswith("_cache-")]
        if self.files is not None:
            files = [name for name in self.files if name in present]
        seal = Seal(
            step=self.step,
            fingerprint=fingerprint,
            output_uri=self.output_uri,
            run_key=self.run_key,
            computed_by=computed_by or self.run_key,
            files=tuple(files),
            committed_at=dt.datetime.now(dt.UTC).isoformat(),
        )
        uri = join_uri(self.output_uri, seal_name(self.step))
        self._storage(uri).write_json(uri, seal.to_json())
        if computed_by is None:
            index_uri = join_uri(self.settings.data_root, index_path(self.step, fingerprint))
            self._storage(index_uri).write_json(index_uri, seal.to_json())
        return seal

    def reuse(self, seal: Seal) -> Seal:
        """Copy the sealed output into this run's place (each file complete or absent), then seal it as a copy.

        A rerun of the run whose output it is writes nothing: its output and seal are already in place."""
        if seal.output_uri == self.output_uri:
            return seal
        self.unseal()
        for name in seal.files:
            self._storage(self.output_uri).copy(join_uri(seal.output_uri, name), join_uri(self.output_uri, name))
        return self.seal(seal.fingerprint, computed_by=seal.computed_by)

    def run(self, decision: CacheDecision, compute: Callable[[], object]) -> None:
        """Reuse the output on a hit; else unseal, ``compute`` (which commits the output) and seal it."""
        log.info("cache %s for %s: %s%s", decision.status, self.step, decision.reason,
                 f" (fingerprint {decision.fingerprint[:16]})" if decision.fingerprint else "")
        if decision.status == "hit" and decision.seal is not None:
            self.reuse(decision.seal)
            log.info("cache hit: %s reused the %s output of run %s (%s) instead of recomputing it",
                     self.run_key, self.step, decision.seal.computed_by, decision.seal.output_uri)
            return
        if decision.fingerprint is not None:
            self.unseal()
        compute()
        if decision.fingerprint is not None:
            self.seal(decision.fingerprint)

    def record(self, section: str, result: Mapping[str, Any], decision: CacheDecision) -> dict[str, Any]:
        """Add the decision to the run summary's ``section`` (written by the step's finish) and to ``result``."""
        entry = decision.summary()
        connection = {"aws_conn_id": self.aws_conn_id, "region_name": self.region_name}
        summary = read_run_summary(self.settings, self.run_key, **connection) or {}
        update_run_summary(self.settings, self.run_key, section, {**summary.get(section, {}), "cache": entry}, **connection)
        return {**result, "cache": entry}


def snapshot_fingerprint(
    curated_uri: str, aws_conn_id: str | None, *, region_name: str | None = None
) -> tuple[str | None, str]:
    """The content fingerprint a curated snapshot's committed manifest records, or ``None`` and why not."""
    uri = join_uri(curated_uri, SNAPSHOT_MANIFEST)
    storage = storage_for(uri, aws_conn_id, region_name=region_name)
    if not storage.exists(uri):
        return None, f"the snapshot {curated_uri} has no {SNAPSHOT_MANIFEST} with a content fingerprint"
    return storage.read_json(uri)["fingerprint"], ""


def sealed_fingerprint(
    step: str, output_uri: str, aws_conn_id: str | None, *, region_name: str | None = None
) -> tuple[str | None, str]:
    """The fingerprint an upstream step sealed its output with, or ``None`` and why not."""
    uri = join_uri(output_uri, seal_name(step))
    storage = storage_for(uri, aws_conn_id, region_name=region_name)
    if not storage.exists(uri):
        return None, f"the {step} output {output_uri} carries no seal (computed with caching off)"
    return storage.read_json(uri)["fingerprint"], ""
