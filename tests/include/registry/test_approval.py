"""The automatic gate's decision table, the human answer's mapping, and the reviewer's request body."""

from __future__ import annotations

import math

import pytest

from include.registry.approval import approval_body, decision_from_response, gate_decision
from include.registry.base import APPROVED, REJECTED


@pytest.mark.parametrize(
    ("challenger", "champion", "interval", "rows", "passed", "reason"),
    [
        (0.70, None, None, 500, True, "no champion"),
        (0.50, None, None, 500, True, "no champion"),  # exactly the minimum passes
        (0.49, None, None, 500, False, "below the minimum 0.5000"),
        (0.90, None, None, 12, False, "insufficient evidence: 12 test rows (the gate needs at least 100)"),
        (0.49, 0.30, (0.10, 0.28), 500, False, "below the minimum"),  # the minimum binds even against a weak champion
        (0.70, 0.60, (0.06, 0.14), 500, True, "delta +0.1000"),  # better than the champion
        (0.60, 0.60, (-0.02, 0.02), 500, True, "95% interval -0.0200 to +0.0200"),  # a drop of exactly the tolerance
        (0.60, 0.60, (-0.03, 0.03), 500, False, "insufficient evidence: 500 test rows cannot rule out a drop"),
        (0.55, 0.60, (-0.08, -0.03), 500, False, "worse than the champion by more than the tolerated 0.0200"),
        (0.62, 0.60, (-0.05, 0.09), 100, False, "insufficient evidence: 100 test rows"),  # better, but too uncertain
    ],
)
def test_gate_decision_table(
    challenger: float, champion: float | None, interval: tuple[float, float] | None, rows: int, passed: bool, reason: str
) -> None:
    decision = gate_decision(challenger, champion, 0.5, 0.02, test_rows=rows, min_test_rows=100, delta_ci95=interval)
    assert decision.passed is passed
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1.2, None, 0.5, 0.0), "challenger macro-F1 must be a number in"),
        ((math.nan, None, 0.5, 0.0), "challenger macro-F1"),
        ((0.6, -0.1, 0.5, 0.0), "champion macro-F1"),
        ((0.6, None, 1.5, 0.0), "min_macro_f1"),
        ((0.6, None, 0.5, -0.01), "max_f1_drop must be a number >= 0"),
        ((0.6, 0.6, 0.5, 0.02), "a champion needs the bootstrap interval"),
    ],
)
def test_gate_rejects_out_of_range_inputs(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gate_decision(*args, test_rows=500, min_test_rows=100)


def test_decision_from_response() -> None:
    alice = {"id": "7", "name": "alice"}
    approved = decision_from_response(["Approve"], alice, {"comment": "looks good"})
    assert (approved.status, approved.approved_by, approved.comment) == (APPROVED, "alice", "looks good")
    rejected = decision_from_response(["Reject"], {"id": "8", "name": ""}, {})
    assert (rejected.status, rejected.approved_by, rejected.comment) == (REJECTED, "8", "")
    timed_out = decision_from_response(["Reject"], None, {"comment": ""}, timedout=True)
    assert (timed_out.status, timed_out.approved_by) == (REJECTED, "timeout")
    assert "timeout" in timed_out.comment
    # A default answer is never an approval, even if the defaults were misconfigured to Approve.
    assert decision_from_response(["Approve"], None, None, timedout=True).status == REJECTED
    for bad in ([], ["Approve", "Reject"], ["Maybe"]):
        with pytest.raises(ValueError, match="exactly one"):
            decision_from_response(bad, alice, None)


def _metrics(f1: float, acc: float, neg: float) -> dict:
    return {"rows": 120, "macro_f1": f1, "accuracy": acc, "per_class": {"negative": {"f1": neg}, "positive": {"f1": 0.8}}}


def test_approval_body_shows_the_comparison_and_links() -> None:
    evaluation = {
        "challenger": _metrics(0.71, 0.75, 0.6),
        "champion": _metrics(0.65, 0.70, 0.5),
        "deltas": {"macro_f1": 0.06, "accuracy": 0.05, "per_class_f1": {"negative": 0.1, "positive": 0.0}},
    }
    body = approval_body("m", "3", evaluation, "within tolerance", {"evaluation": "/d/eval.json", "plots": ""}, 24)
    assert "m version 3" in body and "120 rows" in body
    assert "| macro_f1 | 0.7100 | 0.6500 | 0.0600 |" in body
    assert "| F1 negative | 0.6000 | 0.5000 | +0.1000 |" in body
    assert "within tolerance" in body and "`/d/eval.json`" in body and "plots" not in body
    assert body.count("No answer") == 1 and "No answer within 24 h rejects the model." in body
    alone = approval_body("m", "1", {"challenger": _metrics(0.7, 0.7, 0.6), "champion": None, "deltas": None}, "ok", {}, 1.5)
    assert "| macro_f1 | 0.7000 | — | — |" in alone and "becomes champion" in alone and "within 1.5 h" in alone
