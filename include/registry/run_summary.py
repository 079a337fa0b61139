"""The run summary's sections the registry steps read, and the one they write (``registry``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RunSummaryError(ValueError):
    """A run summary, or a section an earlier step writes into it, is missing: that step has not run (yet)."""


def require_summary(summary: Mapping[str, Any] | None, uri: str, run_key: str) -> Mapping[str, Any]:
    """``summary`` (the run's, read from ``uri``). :raises RunSummaryError: when there is none."""
    if summary is None:
        raise RunSummaryError(f"{uri} does not exist: run the training and evaluate tasks of run {run_key} first")
    return summary


def summary_section(summary: Mapping[str, Any], name: str, uri: str, hint: str = "") -> Mapping[str, Any]:
    """Section ``name`` of the run summary at ``uri``.

    :param hint: what to do when it is missing (which task to run).
    :raises RunSummaryError: ``<uri> has no '<name>' section[: <hint>]``.
    """
    found = summary.get(name)
    if not found:
        raise RunSummaryError(f"{uri} has no '{name}' section" + (f": {hint}" if hint else ""))
    return found


def registry_section(summary: Mapping[str, Any], version: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The ``registry`` section after a registry step: what it held, the version's state (``ModelVersion.to_dict()``),
    and ``extra`` (the gate's verdict, the role, when the approval was recorded)."""
    return {**(summary.get("registry") or {}), **version, **extra}
