"""Print where the newest run's outputs landed, from its run summary JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from include.config import load_settings


def main() -> int:
    settings = load_settings()
    if settings.data_root.startswith("s3://"):
        print(f"Run summaries are under {settings.data_root}/reports/<run>/summary.json")
        return 0
    reports = Path(settings.data_root.removeprefix("file://")) / "reports"
    summaries = sorted(reports.glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    if not summaries:
        print(f"No run summary under {reports} yet.")
        return 1
    path = summaries[-1]
    summary = json.loads(path.read_text())
    print(f"\nRun {summary['run_key']}")
    order = ["ingest", "quality", "features", "training", "evaluation"]
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
            if isinstance(value, str) and value.startswith(("/", "s3://", "file://")):
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
        if payload.get("error"):
            print(f"    error            {payload['error']}")
    print(f"  summary            {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
