"""Print where the newest run's outputs landed, from its run summary JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from include.config import load_settings


def print_evaluation(evaluation: dict) -> None:
    """The challenger's report: evidence, per-class and per-category F1, the most confident mistakes."""
    challenger = evaluation.get("challenger") or {}
    interval = evaluation.get("delta_macro_f1_ci95")
    if interval:
        print(f"    vs champion      macro-F1 change 95% interval {interval[0]:+.4f} to {interval[1]:+.4f}")
    print(f"    test rows        {evaluation.get('test_rows')}")
    per_class = challenger.get("per_class") or {}
    print("    F1 per class     " + ", ".join(f"{label} {figures['f1']:.4f}" for label, figures in per_class.items()))
    for category, figures in sorted((challenger.get("per_category") or {}).items()):
        print(f"      {category:<24} macro-F1 {figures['macro_f1']:.4f} ({figures['rows']} rows)")
    for mistake in (challenger.get("confident_mistakes") or [])[:3]:
        print(f"    mistake          {mistake['true']} read as {mistake['predicted']} ({mistake['confidence']:.2f}): "
              f"{mistake['text'][:90]}…")


def print_rollout(rollout: dict) -> None:
    """Who won, after how many requests, at what regret, and where the endpoint serves."""
    conclusion = rollout.get("conclusion") or {}
    versions = rollout.get("versions") or {}
    for arm, figures in rollout.get("arms", {}).items():
        rate = figures["successes"] / max(figures["successes"] + figures["failures"], 1)
        print(f"    {arm:<16} model v{versions.get(arm, '?')}: served {figures['served']}, "
              f"reward rate {rate:.3f}, {figures['status']}")
    decided = rollout.get("requests_to_decision")
    print(f"    decision         {conclusion.get('action', rollout.get('status'))} after "
          f"{decided if decided is not None else rollout.get('requests')} requests in {rollout.get('rounds')} rounds: "
          f"{conclusion.get('reason') or rollout.get('reason')}")
    print(f"    regret           {rollout.get('regret')} (a 50/50 split: {rollout.get('split_regret')}; "
          f"rates from {rollout.get('rates_source')})")
    if conclusion.get("address"):
        print(f"    endpoint         {conclusion['address']} serves v{conclusion.get('winner_version')} "
              f"(POST /invocations; make stop stops it)")
    for name, uri in (rollout.get("plots") or {}).items():
        print(f"    plot {name:<11} {uri}")


def describe_cache(cache: dict) -> str:
    """``hit (from run …)``, ``miss (why)`` or ``off (why)``: how a cached step got its output."""
    if cache["status"] == "hit":
        return f"hit (from run {cache['from_run']})"
    return f"{cache['status']} ({cache['reason']})"


def newest_summary(settings: object) -> Path | None:
    reports = Path(settings.data_root.removeprefix("file://")) / "reports"
    summaries = sorted(reports.glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    return summaries[-1] if summaries else None


def main() -> int:
    settings = load_settings()
    if settings.data_root.startswith("s3://"):
        print(f"Run summaries are under {settings.data_root}/reports/<run>/summary.json")
        return 0
    path = newest_summary(settings)
    if path is None:
        print(f"No run summary under {settings.data_root}/reports yet.")
        return 1
    summary = json.loads(path.read_text())
    print(f"\nRun {summary['run_key']}")
    order = ["ingest", "quality", "features", "training", "evaluation", "registry", "rollout"]
    for section in sorted(summary, key=lambda name: order.index(name) if name in order else len(order)):
        payload = summary[section]
        if not isinstance(payload, dict):
            continue
        print(f"  {section}: {payload.get('status') or payload.get('gate', '')}")
        if section == "registry":
            print(f"    version          {payload['name']} v{payload['version']} ({payload.get('role') or 'no role'})"
                  f", by {payload.get('approved_by') or '—'}: {payload.get('approval_comment') or ''}")
        if "passed" in payload and "total" in payload:
            print(f"    checks           {payload['passed']}/{payload['total']} passed ({payload['engine']} engine)")
        for key, value in payload.items():
            if key != "error" and isinstance(value, str) and value.startswith(("/", "s3://", "file://")):
                print(f"    {key:<16} {value}")
            elif isinstance(value, float) and key.endswith(("macro_f1", "accuracy")):
                print(f"    {key:<16} {value:.4f}")
            elif key == "rows" and isinstance(value, dict):
                print(f"    {key:<16} " + ", ".join(f"{split} {n}" for split, n in value.items()))
        if "counts" in payload:
            counts = payload["counts"]
            print(
                f"    rows             {counts['input_rows']} in = {counts['accepted']} accepted"
                f" + {counts['excluded']} excluded + {counts['rejected']} rejected"
            )
            for reason, rows in counts["rejected_by_reason"].items():
                print(f"      {rows:>6}  {reason}")
        if section == "evaluation":
            print_evaluation(payload)
        if section == "rollout":
            print_rollout(payload)
        if payload.get("absent_labels"):
            print(f"    absent labels    {', '.join(payload['absent_labels'])} (no review has them: trained and scored without)")
        if payload.get("cache"):
            print(f"    cache            {describe_cache(payload['cache'])}")
        if payload.get("error"):
            print(f"    error            {payload['error']}")
    print(f"  summary            {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
