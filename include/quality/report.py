"""The per-run quality report: one JSON document and the same content as a static HTML page."""

from __future__ import annotations

import html
from typing import Any

from include.quality.results import CheckResult, count_results


def build_report(
    *,
    dataset: str,
    snapshot: str,
    snapshot_uri: str,
    suite_source: str,
    engine: str,
    generated_at: str,
    results: list[CheckResult],
    metrics: dict[str, float | None],
    bias: dict[str, Any] | None,
    previous_snapshot: str | None,
) -> dict[str, Any]:
    """The report document; ``passed`` is false when any Error-level check failed."""
    counts = count_results(results)
    return {
        "dataset": dataset,
        "snapshot": snapshot,
        "snapshot_uri": snapshot_uri,
        "suite": suite_source,
        "engine": engine,
        "generated_at": generated_at,
        "previous_snapshot": previous_snapshot,
        "passed": counts["error_failures"] == 0,
        "counts": counts,
        "results": [result.to_dict() for result in results],
        "metrics": metrics,
        "bias": bias,
    }


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1f2328; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr.Failure.Error td { background: #ffebe9; }
tr.Failure.Warning td { background: #fff8c5; }
.verdict { font-size: 1.3rem; font-weight: 600; }
.pass { color: #1a7f37; } .fail { color: #cf222e; }
"""


def _labels_paragraph(bias: dict[str, Any] | None) -> str:
    """Rows per sentiment label, naming any label with no row (a model trained on this data cannot learn it)."""
    if not bias or "label_rows" not in bias:
        return ""
    rows = ", ".join(f"{html.escape(label)} {count}" for label, count in bias["label_rows"].items())
    absent = bias["absent_labels"]
    note = f" <strong>Absent label(s): {html.escape(', '.join(absent))}</strong> — training and evaluation cover only the others." if absent else ""
    return f"<p>Rows per label: {rows}.{note}</p>"


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page: verdict, counts, then one row per check."""
    e = html.escape
    counts = report["counts"]
    verdict = (
        '<span class="pass">PASSED</span>' if report["passed"] else '<span class="fail">FAILED (Error-level)</span>'
    )
    rows = []
    for result in report["results"]:
        rows.append(
            f'<tr class="{e(result["status"])} {e(result["level"])}">'
            f"<td>{e(result['name'])}</td><td>{e(result['kind'])}</td><td>{e(result['status'])}</td>"
            f"<td>{e(_value(result['observed']))}</td><td>{e(result['threshold'])}</td>"
            f"<td>{e(result['level'])}</td><td>{e(result['message'])}</td>"
            f"<td>{'' if result['line'] is None else result['line']}</td></tr>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Data quality: {e(report['dataset'])} {e(report['snapshot'])}</title>
<style>{_STYLE}</style></head><body>
<h1>Data quality — {e(report['dataset'])}, snapshot {e(report['snapshot'])}</h1>
<p class="verdict">{verdict}</p>
<p>{counts['passed']} of {counts['total']} checks passed; {counts['error_failures']} Error-level and
{counts['warning_failures']} Warning-level failures. Engine: {e(report['engine'])}.
Suite: <code>{e(report['suite'])}</code>. Data: <code>{e(report['snapshot_uri'])}</code>.
Compared with snapshot: {e(report['previous_snapshot'] or 'none (first run)')}.
Generated {e(report['generated_at'])}.</p>
{_labels_paragraph(report.get("bias"))}
<table><thead><tr><th>constraint</th><th>kind</th><th>status</th><th>observed value</th>
<th>threshold</th><th>level</th><th>message</th><th>suite line</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
</body></html>
"""
