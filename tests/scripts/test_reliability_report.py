"""scripts/render_reliability.py: records in, the report's sections and tables out."""

from __future__ import annotations

from pathlib import Path

from scripts.render_reliability import load_records, render
from tests.reliability import ReliabilityRecord


def test_records_render_by_section_in_the_reports_order_with_what_did_not_hold(tmp_path: Path) -> None:
    ReliabilityRecord("t::b", "Security", "categories", "SQL | in a param", "dag.test()", "refused").write(tmp_path, True)
    ReliabilityRecord("t::a", "Bad inputs", "empty.tsv", "an empty file", "dag.test()", "stage_raw failed").write(tmp_path, True)
    ReliabilityRecord("t::c", "Bad inputs", "bom.tsv", "a BOM", "make ingest", "").write(tmp_path, False)

    report = render(load_records(tmp_path))

    assert "\n2 of 3 held.\n" in report
    assert report.index("## Bad inputs") < report.index("## Security")  # issue 15's order, not alphabetical
    assert "\n1 of 2 held.\n" in report
    bad_inputs = report[report.index("## Bad inputs"):report.index("## Security")]
    assert bad_inputs.index("`bom.tsv`") < bad_inputs.index("`empty.tsv`")
    assert "| `bom.tsv` | a BOM | make ingest | (the test stopped before it saw an outcome) | **no** |" in report
    assert "| `categories` | SQL \\| in a param | dag.test() | refused | yes |" in report
