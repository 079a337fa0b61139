"""Approval rules: the automatic gate, the human reviewer's request body, and reading the reviewer's answer."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
    challenger_macro_f1: float, champion_macro_f1: float | None, min_macro_f1: float, max_f1_drop: float,
    test_rows: int, min_test_rows: int, delta_ci95: Sequence[float] | None = None,
) -> GateDecision:
    """Weigh the evidence of the shared test split; pass only when it supports approving.

    Rejects with "insufficient evidence: N test rows" when the split has fewer than ``min_test_rows``
    rows, or when the paired bootstrap 95 % interval of the challenger-minus-champion macro-F1
    (``delta_ci95``) still admits a drop of more than ``max_f1_drop``; rejects outright when the
    challenger's macro-F1 is below ``min_macro_f1`` or the whole interval lies below ``-max_f1_drop``.
    With no champion only the row count and the minimum apply.
    :raises ValueError: if a score or threshold is out of range, or a champion comes without an interval.
    """
    challenger = _check_f1("challenger macro-F1", challenger_macro_f1)
    minimum = _check_f1("min_macro_f1", min_macro_f1)
    if not isinstance(max_f1_drop, int | float) or math.isnan(max_f1_drop) or max_f1_drop < 0:
        raise ValueError(f"max_f1_drop must be a number >= 0, got {max_f1_drop!r}")
    if test_rows < min_test_rows:
        return GateDecision(False, f"insufficient evidence: {test_rows} test rows (the gate needs at least {min_test_rows})")
    if challenger < minimum - EPSILON:
        return GateDecision(False, f"test macro-F1 {challenger:.4f} is below the minimum {minimum:.4f} ({test_rows} test rows)")
    if champion_macro_f1 is None:
        return GateDecision(True, f"test macro-F1 {challenger:.4f} >= minimum {minimum:.4f} on {test_rows} test rows; no champion to compare with")
    champion = _check_f1("champion macro-F1", champion_macro_f1)
    if delta_ci95 is None or len(delta_ci95) != 2:
        raise ValueError(f"a champion needs the bootstrap interval of the macro-F1 delta, got {delta_ci95!r}")
    low, high = float(delta_ci95[0]), float(delta_ci95[1])
    versus = (
        f"macro-F1 {challenger:.4f} vs the champion's {champion:.4f} (delta {challenger - champion:+.4f}, "
        f"95% interval {low:+.4f} to {high:+.4f}, {test_rows} test rows)"
    )
    if high < -max_f1_drop - EPSILON:
        return GateDecision(False, f"worse than the champion by more than the tolerated {max_f1_drop:.4f}: {versus}")
    if low < -max_f1_drop - EPSILON:
        return GateDecision(
            False, f"insufficient evidence: {test_rows} test rows cannot rule out a drop of more than {max_f1_drop:.4f}: {versus}"
        )
    return GateDecision(True, f"test macro-F1 {challenger:.4f} >= minimum {minimum:.4f}; no drop beyond {max_f1_drop:.4f}: {versus}")


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
    interval = deltas.get("macro_f1_ci95")
    if interval:
        rows.append(f"| macro_f1 delta, 95% interval | | | {interval[0]:+.4f} to {interval[1]:+.4f} |")
    for category, figures in sorted((challenger.get("per_category") or {}).items()):
        rows.append(f"| macro_f1 {category} ({figures['rows']} rows) | {_f1(figures['macro_f1'])} | | |")
    mistakes = [
        f"- `{m['review_id']}` true {m['true']}, predicted {m['predicted']} ({m['confidence']:.2f}): {m['text'][:160]}"
        for m in (challenger.get("confident_mistakes") or [])[:5]
    ]
    lines = [
        f"**{model_name} version {version}** — test split: {test_rows} rows"
        + ("" if champion else " (no champion yet: an approved model becomes champion)"),
        "",
        *rows,
        "",
        f"Automatic gate: passed — {gate_reason}",
        "",
        *(["Most confident mistakes:", *mistakes, ""] if mistakes else []),
        *(f"- {name}: `{uri}`" for name, uri in links.items() if uri),
        "",
        "Approve to make this version the challenger for the rollout (or the champion if there is none); "
        f"Reject keeps the current champion. No answer within {timeout_hours:g} h rejects the model.",
    ]
    return "\n".join(lines)
