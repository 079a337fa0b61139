"""Fingerprints and cache settings (include/caching.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from include.caching import (
    CacheConfigError,
    code_files,
    code_version,
    content_fingerprint,
    parse_expire_after,
    step_fingerprint,
)


def test_step_fingerprint_changes_with_each_input() -> None:
    base = step_fingerprint("training", {"features": "f1"}, {"epochs": "2"}, "code-1")
    assert base == step_fingerprint("training", {"features": "f1"}, {"epochs": "2"}, "code-1")
    assert len({
        base,
        step_fingerprint("training", {"features": "f2"}, {"epochs": "2"}, "code-1"),
        step_fingerprint("training", {"features": "f1"}, {"epochs": "3"}, "code-1"),
        step_fingerprint("training", {"features": "f1"}, {"epochs": "2"}, "code-2"),
        step_fingerprint("evaluation", {"features": "f1"}, {"epochs": "2"}, "code-1"),
    }) == 5


def test_code_version_covers_names_and_bytes_of_code_files(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "suite.yaml").write_text("checks: []\n")
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (package / "notes.md").write_text("not code")
    files = code_files(package)
    assert [f.name for f in files] == ["a.py", "suite.yaml"]
    before = code_version(files, tmp_path)
    (package / "a.py").write_text("A = 2\n")
    assert code_version(files, tmp_path) != before
    (package / "a.py").write_text("A = 1\n")
    assert code_version(files, tmp_path) == before
    (package / "a.py").rename(package / "b.py")
    assert code_version(code_files(package), tmp_path) != before


def test_content_fingerprint_depends_on_rows_columns_and_engine() -> None:
    base = content_fingerprint("duckdb-2.0.1", ["a", "b"], 10, 12345)
    assert base != content_fingerprint("duckdb-2.0.1", ["a", "b"], 10, 12346)
    assert base != content_fingerprint("duckdb-2.0.1", ["a", "c"], 10, 12345)
    assert base != content_fingerprint("duckdb-2.1.0", ["a", "b"], 10, 12345)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("P30D", dt.timedelta(days=30)), ("PT12H", dt.timedelta(hours=12)), ("p1dt6h", dt.timedelta(days=1, hours=6)),
     ("P2W", dt.timedelta(weeks=2)), ("PT90M", dt.timedelta(minutes=90)), ("", None), (None, None)],
)
def test_expire_after_reads_iso_8601_durations(text: str | None, expected: dt.timedelta | None) -> None:
    assert parse_expire_after(text) == expected


@pytest.mark.parametrize("text", ["30d", "P", "PT", "P1Y", "P-1D"])
def test_expire_after_refuses_other_text_naming_the_param(text: str) -> None:
    with pytest.raises(CacheConfigError, match="cache_expire_after"):
        parse_expire_after(text)
