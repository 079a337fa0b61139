"""Approval rules: the automatic gate, the human reviewer's request body, and reading the reviewer's answer."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from include.registry.base import APPROVED, REJECTED

GATE_APPROVER = "reviewflow-gate"
TIMEOUT_APPROVER = "timeout"
# Scores are ratios of counts: compare with a tolerance so 0.60 - 0.58 counts as a drop of exactly 0.02.
EPSILON = 1e-9


@dataclass(frozen=True)
class GateDecision:
    """The automatic gate's verdict and the sentence explaining it."""

    passed: bool
    reason: str


def _check_f1(name: str, value: float) -> float:
    if not isinstance(value, int | float) or math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def gate_decision(
    challenger_macro_f1: float, champion_macro_f1: float | None, min_macro_f1: float, max_f1_drop: float
) -> GateDecision:
    """Pass when the challenger's test macro-F1 reaches ``min_macro_f1`` and is at most ``max_f1_drop`` below the champion's.

    Both scores must come from the same test split. With no champion only the minimum applies.
    :raises ValueError: if a score or threshold is out of range.
    """
    challenger = _check_f1("challenger macro-F1", challenger_macro_f1)
    minimum = _check_f1("min_macro_f1", min_macro_f1)
    if not isinstance(max_f1_drop, int | float) or math.isnan(max_f1_drop) or max_f1_drop < 0:
        raise ValueError(f"max_f1_drop must be a number >= 0, got {max_f1_drop!r}")
    if challenger < minimum - EPSILON:
        return GateDecision(False, f"test macro-F1 {challenger:.4f} is below the minimum {minimum:.4f}")
    if champion_macro_f1 is None:
        return GateDecision(True, f"test macro-F1 {challenger:.4f} >= minimum {minimum:.4f}; no champion to compare with")
    champion = _check_f1("champion macro-F1", champion_macro_f1)
    drop = champion - challenger
    if drop > max_f1_drop + EPSILON:
        return GateDecision(
            False,
            f"test macro-F1 {challenger:.4f} is {drop:.4f} below the champion's {champion:.4f}, "
            f"more than the tolerated {max_f1_drop:.4f}",
        )
    return GateDecision(
        True,
        f"test macro-F1 {challenger:.4f} >= minimum {minimum:.4f} and within {max_f1_drop:.4f} "
        f"of the champion's {champion:.4f} (delta {challenger - champion:+.4f})",
    )


@dataclass(frozen=True)
class ApprovalDecision:
    """An approval decision as the registry records it."""

    status: str
    approved_by: str
    comment: str


def decision_from_response(
    chosen_options: list[str], responded_by_user: Mapping[str, Any] | None, params_input: Mapping[str, Any] | None,
    timedout: bool = False,
) -> ApprovalDecision:
    """Map an ``ApprovalOperator`` response (``Approve``/``Reject``, user, form fields) to a registry decision.

    A response without a user is the timeout default (``Reject``).
    :raises ValueError: unless exactly one of ``Approve``/``Reject`` was chosen.
    """
    if len(chosen_options) != 1 or chosen_options[0] not in ("Approve", "Reject"):
        raise ValueError(f"expected exactly one of 'Approve'/'Reject', got {chosen_options!r}")
    comment = str((params_input or {}).get("comment") or "")
    if timedout or not responded_by_user:
        return ApprovalDecision(REJECTED, TIMEOUT_APPROVER, comment or "no response before the timeout: rejected by default")
    user = str(responded_by_user.get("name") or responded_by_user.get("id") or "unknown")
    return ApprovalDecision(APPROVED if chosen_options[0] == "Approve" else REJECTED, user, comment)


def _f1(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def approval_body(
    model_name: str,
    version: str,
    evaluation: Mapping[str, Any],
    gate_reason: str,
    links: Mapping[str, str],
    timeout_hours: float,
) -> str:
    """Markdown for the human reviewer: challenger vs champion on the same test split, the gate verdict,
    links, and (once) how long the request waits before it rejects."""
    challenger = evaluation["challenger"]
    champion = evaluation.get("champion")
    deltas = evaluation.get("deltas") or {}
    rows = [
        "| metric | challenger | champion | delta |",
        "|---|---|---|---|",
    ]
    for metric in ("macro_f1", "accuracy"):
        rows.append(
            f"| {metric} | {_f1(challenger.get(metric))} | {_f1(champion.get(metric) if champion else None)} "
            f"| {_f1(deltas.get(metric)) if deltas else '—'} |"
        )
    for label, delta in sorted((deltas.get("per_class_f1") or {}).items()):
        rows.append(
            f"| F1 {label} | {_f1(challenger['per_class'][label]['f1'])} | {_f1(champion['per_class'][label]['f1'])} "
            f"| {delta:+.4f} |"
        )
    test_rows = challenger.get("rows")
    lines = [
        f"**{model_name} version {version}** — test split: {test_rows} rows"
        + ("" if champion else " (no champion yet: an approved model becomes champion)"),
        "",
        *rows,
        "",
        f"Automatic gate: passed — {gate_reason}",
        "",
        *(f"- {name}: `{uri}`" for name, uri in links.items() if uri),
        "",
        "Approve to make this version the challenger for the rollout (or the champion if there is none); "
        f"Reject keeps the current champion. No answer within {timeout_hours:g} h rejects the model.",
    ]
    return "\n".join(lines)
