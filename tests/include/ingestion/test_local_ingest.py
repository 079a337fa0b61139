"""The ingestion SQL on DuckDB: every row accepted, excluded or rejected with its reason."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from include.caching import SNAPSHOT_MANIFEST
from include.ingestion.counts import RejectedShareError
from include.ingestion.local import ingest_with_duckdb
from include.ingestion.schema import (
    EARLIEST_REVIEW_DATE,
    REVIEW_COLUMNS,
    SourceError,
    check_parquet_schema,
    check_tsv_header,
    parquet_footer_size,
    source_format,
)
from include.ingestion.sql import category_filter, classified_relation, duckdb_raw_relation
from include.sample_data import BAD_ROW_KINDS, SampleSpec, generate_rows, write_sample
from tests.reliability import ReliabilityRecord

EXPECTED_REASON = {
    "column_count": "row: expected 15 tab-separated columns, found 13",
    "star_rating": "star_rating: not an integer 1..5",
    "empty_review_id": "review_id: empty",
    "empty_body": "review_body: empty",
    "review_date": "review_date: not a YYYY-MM-DD date",
    "invalid_utf8": "row: invalid UTF-8",
    "votes": "helpful_votes: greater than total_votes",
}


def ingest(tmp_path: Path, source: Path, **kwargs: object):
    return ingest_with_duckdb(
        [source], source_format(str(source)), tmp_path / "curated" / "snapshot=s", tmp_path / "rejected" / "snapshot=s", **kwargs
    )


def write_tsv(path: Path, lines: list[str]) -> Path:
    path.write_bytes(("\t".join(REVIEW_COLUMNS) + "\n" + "".join(line + "\n" for line in lines)).encode())
    return path


def good_rows(n: int) -> list[list[str]]:
    return [list(row) for row in generate_rows(SampleSpec(rows=n, seed=5))]


def test_every_injected_bad_row_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv.gz"
    written = write_sample(source, SampleSpec(rows=2_000, bad_rows=14))
    result = ingest(tmp_path, source)
    assert result.counts.accepted == written["good"] == 1_986
    assert result.counts.rejected_by_reason == {EXPECTED_REASON[k]: written[k] for k in BAD_ROW_KINDS}
    assert result.counts.input_rows == 2_000
    rejected = pq.read_table(result.rejected_dir / "rejected.parquet").to_pylist()
    assert len(rejected) == 14
    assert all(r["source_file"] == str(source) and r["reject_reason"] for r in rejected)
    unreadable = [r for r in rejected if r["reject_field"] == "row"]
    assert len(unreadable) == written["invalid_utf8"] + written["column_count"]
    lines = gzip.decompress(source.read_bytes()).split(b"\n")
    assert all(r["review_id"].encode() in lines[r["source_line"] - 1] for r in unreadable)
    assert {r["reject_field"] for r in rejected} >= {"star_rating", "review_id", "review_body", "review_date", "row"}


def test_curated_is_typed_and_partitioned_by_category(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv.gz"
    write_sample(source, SampleSpec(rows=1_000))
    result = ingest(tmp_path, source)
    partitions = sorted(p.name for p in result.curated_dir.iterdir() if p.name != SNAPSHOT_MANIFEST)
    assert partitions and all(p.startswith("product_category=") for p in partitions)
    schema = pq.read_schema(next(result.curated_dir.glob("*/*.parquet")))
    assert str(schema.field("star_rating").type) == "int32"
    assert str(schema.field("review_date").type) == "date32[day]"
    assert "product_category" not in schema.names
    total = duckdb.sql(f"SELECT count(*) FROM read_parquet('{result.curated_dir}/*/*.parquet', hive_partitioning=true)").fetchall()[0][0]
    assert total == 1_000


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("star_rating", "0", "star_rating: not an integer 1..5"),
        ("star_rating", "4.5", "star_rating: not an integer 1..5"),
        ("star_rating", "", "star_rating: not an integer 1..5"),
        ("review_date", "26/11/2015", "review_date: not a YYYY-MM-DD date"),
        ("review_date", "2015-02-30", "review_date: not a YYYY-MM-DD date"),
        ("review_date", "2015/03/04", "review_date: not a YYYY-MM-DD date"),
        ("review_date", "2015-3-4", "review_date: not a YYYY-MM-DD date"),
        ("review_date", "1900-01-01", "review_date: before 1995-01-01"),
        ("review_date", "2026-03-02", "review_date: after the run date 2026-03-01"),
        ("review_date", "2026-03-01", None),
        ("review_date", "1995-01-01", None),
        ("star_rating", "5.0", "star_rating: not an integer 1..5"),
        ("star_rating", "five", "star_rating: not an integer 1..5"),
        ("review_body", "'); DROP TABLE classified; --", None),
        ("helpful_votes", "-1", "helpful_votes: not a non-negative integer"),
        ("helpful_votes", "2.5", "helpful_votes: not a non-negative integer"),
        ("helpful_votes", "3000000000", "helpful_votes: not a non-negative integer"),
        ("total_votes", "many", "total_votes: not a non-negative integer"),
        ("total_votes", "007", "total_votes: not a non-negative integer"),
        ("review_id", "  ", "review_id: empty"),
        ("review_body", "   ", "review_body: empty"),
        ("review_body", "", "review_body: empty"),
        ("product_category", "", "product_category: empty"),
        ("review_body", "  starts with spaces", None),
        ("star_rating", " 4 ", None),
        ("total_votes", "2147483647", None),
    ],
)
def test_each_field_rule(tmp_path: Path, field: str, value: str, reason: str | None) -> None:
    rows = good_rows(40)
    rows[3][REVIEW_COLUMNS.index(field)] = value
    source = write_tsv(tmp_path / "in.tsv", ["\t".join(r) for r in rows])
    result = ingest(tmp_path, source, max_rejected_share=0.5, latest_review_date=dt.date(2026, 3, 1))
    assert result.counts.rejected_by_reason == ({reason: 1} if reason else {})
    assert result.counts.accepted == (39 if reason else 40)


def test_too_many_columns_is_rejected(tmp_path: Path) -> None:
    rows = ["\t".join(r) for r in good_rows(30)]
    rows[0] += "\textra"
    result = ingest(tmp_path, write_tsv(tmp_path / "in.tsv", rows), max_rejected_share=0.5)
    assert result.counts.rejected_by_reason == {"row: expected 15 tab-separated columns, found 16": 1}


def test_a_repeated_header_line_is_quarantined_and_empty_lines_are_no_rows(tmp_path: Path) -> None:
    rows = ["\t".join(r) for r in good_rows(30)]
    source = write_tsv(tmp_path / "in.tsv", rows[:10] + ["", "\t".join(REVIEW_COLUMNS)] + rows[10:] + [""])
    result = ingest(tmp_path, source)
    assert (result.counts.accepted, result.counts.rejected_by_reason) == (30, {"row: a repeated header line": 1})


def test_duplicate_ids_keep_one_identical_row_and_no_conflicting_one(tmp_path: Path) -> None:
    rows = good_rows(60)
    conflicting = list(rows[5])
    conflicting[REVIEW_COLUMNS.index("star_rating")] = "1" if rows[5][REVIEW_COLUMNS.index("star_rating")] != "1" else "2"
    first = write_tsv(tmp_path / "a.tsv", ["\t".join(r) for r in rows[:40] + [rows[0], rows[0]]])
    second = write_tsv(tmp_path / "b.tsv", ["\t".join(r) for r in rows[40:] + [rows[1], conflicting]])
    result = ingest_with_duckdb(
        [second, first], "tsv", tmp_path / "curated" / "snapshot=s", tmp_path / "rejected" / "snapshot=s", max_rejected_share=0.2
    )
    assert result.counts.rejected_by_reason == {
        "review_id: duplicate of an identical row": 3,  # rows[0] twice more in a.tsv, rows[1] again in b.tsv
        "review_id: shared by rows with different content": 2,  # rows[5] in a.tsv and its changed copy in b.tsv
    }
    assert result.counts.accepted == 59 and result.counts.input_rows == 64
    rejected = pq.read_table(result.rejected_dir / "rejected.parquet").to_pylist()
    duplicates = sorted((Path(r["source_file"]).name, r["review_id"]) for r in rejected if "identical" in r["reject_reason"])
    # The copy kept is the first by source file name: a.tsv's rows[1], so b.tsv's is the duplicate.
    assert duplicates == sorted([("a.tsv", rows[0][2]), ("a.tsv", rows[0][2]), ("b.tsv", rows[1][2])])
    curated = duckdb.sql(f"SELECT review_id FROM read_parquet('{result.curated_dir}/*/*.parquet')").fetchall()
    assert len({r[0] for r in curated}) == len(curated) == 59 and (rows[5][2],) not in curated


def test_the_local_review_id_rule_classifies_as_the_shared_sql_athena_runs(tmp_path: Path) -> None:
    """DuckDB applies the review-id rule by rowid (duckdb/reject_repeated_review_ids.sql); Athena runs the
    window of classify_reviews.sql. Both, run here on the same files, give every row the same outcome."""
    rows = good_rows(30)

    def changed(row: list[str], field: str, value: str) -> list[str]:
        copy = list(row)
        copy[REVIEW_COLUMNS.index(field)] = value
        return copy

    files = [
        write_tsv(tmp_path / "a.tsv", ["\t".join(r) for r in rows[:20] + [rows[0], rows[0], rows[3], changed(rows[6], "review_body", "")]]),
        write_tsv(tmp_path / "b.tsv", ["\t".join(r) for r in rows[20:] + [rows[1], rows[3], changed(rows[3], "total_votes", "99"), rows[6]]]),
    ]
    run_date = dt.date(2030, 1, 1)
    result = ingest_with_duckdb(
        files, "tsv", tmp_path / "curated" / "snapshot=s", tmp_path / "rejected" / "snapshot=s",
        max_rejected_share=0.5, latest_review_date=run_date,
    )
    rejected = pq.read_table(result.rejected_dir / "rejected.parquet").to_pylist()
    curated = duckdb.sql(f"SELECT review_id FROM read_parquet('{result.curated_dir}/*/*.parquet')").fetchall()
    local = sorted([(Path(r["source_file"]).name, r["review_id"], r["reject_reason"]) for r in rejected])
    raw = duckdb_raw_relation("tsv", {str(f): str(f) for f in files})
    shared = duckdb.sql(f"SELECT source_file, review_id, reject_reason FROM {classified_relation(raw, 'duckdb', run_date)}").fetchall()
    assert local == sorted((Path(f).name, review_id, reason) for f, review_id, reason in shared if reason is not None)
    assert sorted(r[0] for r in curated) == sorted(review_id for _, review_id, reason in shared if reason is None)
    assert {reason for *_, reason in local} == {
        "review_id: duplicate of an identical row", "review_id: shared by rows with different content", "review_body: empty",
    }


@pytest.mark.reliability
@pytest.mark.parametrize("category", ["Books') OR TRUE OR ('", "x'; DROP TABLE classified; --", "Bo''oks", "Books\\' OR 1=1 --"])
def test_a_category_is_only_ever_a_literal(tmp_path: Path, category: str, reliability: ReliabilityRecord) -> None:
    """Bypassing the trigger form's pattern: the value still reaches the SQL as one quoted literal."""
    reliability.section, reliability.case, reliability.path = "Security", f"categories=[{category!r}]", "ingest_with_duckdb()"
    reliability.tried = "SQL in a category, past the trigger form (the ingestion function called directly)"
    source = write_tsv(tmp_path / "in.tsv", ["\t".join(r) for r in good_rows(40)])
    with pytest.raises(RejectedShareError, match="no rows in the requested categories") as error:
        ingest(tmp_path, source, categories=[category])
    reliability.outcome = "the query ran with the value as one literal: " + str(error.value).split(": ", 1)[1]
    # The predicate keeps exactly the rows equal to a listed category, whatever the value holds.
    values = [category, "Books", "x", "' OR TRUE", ""]
    kept = duckdb.execute(
        f"SELECT product_category FROM (SELECT unnest(?) AS product_category) WHERE {category_filter([category, 'Toys'])}",
        [values],
    ).fetchall()
    assert kept == [(category,)]


def test_categories_exclude_other_rows_and_counts_add_up(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv.gz"
    write_sample(source, SampleSpec(rows=1_000, bad_rows=7))
    result = ingest(tmp_path, source, categories=["Books", "Toys"])
    counts = result.counts
    assert counts.accepted + counts.excluded + counts.rejected == 1_000
    assert 0 < counts.accepted < 500 and counts.excluded > 500
    assert sorted(p.name for p in result.curated_dir.glob("product_category=*")) == ["product_category=Books", "product_category=Toys"]
    assert set(counts.excluded_by_category) == {"Apparel", "Beauty", "Electronics", "Home", "Kitchen", "Sports"}
    assert sum(counts.excluded_by_category.values()) == counts.excluded


def test_no_rows_in_the_categories_names_asked_and_present_ones(tmp_path: Path) -> None:
    rows = good_rows(60)
    categories = ["Books"] * 24 + ["Toys"] * 12 + ["Home"] * 8 + ["Garden"] * 6 + ["Music"] * 4 + ["Pets"] * 4 + ["Tools"] * 2
    for row, category in zip(rows, categories, strict=True):
        row[REVIEW_COLUMNS.index("product_category")] = category
    source = write_tsv(tmp_path / "in.tsv", ["\t".join(row) for row in rows])
    with pytest.raises(RejectedShareError) as error:
        ingest(tmp_path, source, categories=["Bookz", "Toyz"])
    assert str(error.value) == (
        f"{source}: no rows in the requested categories ['Bookz', 'Toyz'] (param categories); the file's 60 valid rows "
        "are in Books (24), Toys (12), Home (8), Garden (6), Music (4) and 2 more"
    )
    assert not (tmp_path / "curated" / "snapshot=s").exists()


def test_threshold_fails_after_quarantining(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv.gz"
    write_sample(source, SampleSpec(rows=200, bad_rows=20))
    with pytest.raises(RejectedShareError, match=r"rejected 20 of 200 rows \(10.0%\), above the 5.0% threshold set by the param max_rejected_share"):
        ingest(tmp_path, source)
    assert (tmp_path / "rejected" / "snapshot=s" / "rejected.parquet").exists()
    assert not (tmp_path / "curated" / "snapshot=s").exists()


def test_header_only_file_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(RejectedShareError, match="no data rows"):
        ingest(tmp_path, write_tsv(tmp_path / "empty.tsv", []))


def test_rerun_replaces_its_own_output(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv.gz"
    write_sample(source, SampleSpec(rows=500))
    first = ingest(tmp_path, source)
    files_before = sorted(p.relative_to(first.curated_dir) for p in first.curated_dir.rglob("*.parquet"))
    second = ingest(tmp_path, source)
    files_after = sorted(p.relative_to(second.curated_dir) for p in second.curated_dir.rglob("*.parquet"))
    assert files_before == files_after
    total = duckdb.sql(f"SELECT count(*) FROM read_parquet('{second.curated_dir}/*/*.parquet')").fetchall()[0][0]
    assert total == 500
    assert not [p for p in (tmp_path / "curated").iterdir() if p.name.startswith(".")]


def test_parquet_source(tmp_path: Path) -> None:
    tsv = tmp_path / "in.tsv.gz"
    write_sample(tsv, SampleSpec(rows=300))
    parquet = tmp_path / "in.parquet"
    duckdb.sql(
        "COPY (SELECT * REPLACE (CAST(star_rating AS INTEGER) AS star_rating, CAST(helpful_votes AS INTEGER) AS helpful_votes, "
        "CAST(total_votes AS INTEGER) AS total_votes, CAST(review_date AS DATE) AS review_date) "
        f"FROM read_csv('{tsv}', delim='\t', header=true, quote='', all_varchar=true)) TO '{parquet}' (FORMAT PARQUET)"
    )
    check_parquet_schema(str(parquet), parquet_footer(parquet))
    result = ingest(tmp_path, parquet)
    assert result.counts.accepted == 300 and result.counts.rejected == 0


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv.gz"
    write_sample(source, SampleSpec(rows=2_000))
    source.write_bytes(source.read_bytes()[:-100])
    with pytest.raises(SourceError, match=f"{source}: not a readable gzip file"):
        ingest(tmp_path, source)
    assert not (tmp_path / "curated" / "snapshot=s").exists()


def parquet_footer(path: Path) -> bytes:
    """The bytes the staging task reads from the end of a Parquet file: its footer."""
    data = path.read_bytes()
    return data[-parquet_footer_size(str(path), data[:8], data[-8:]):]


def test_parquet_without_the_schema_fails(tmp_path: Path) -> None:
    parquet = tmp_path / "other.parquet"
    duckdb.sql(f"COPY (SELECT 1 AS id, 'x' AS review_body) TO '{parquet}' (FORMAT PARQUET)")
    with pytest.raises(SourceError, match="lacks column"):
        check_parquet_schema(str(parquet), parquet_footer(parquet))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("k.tsv", b"", "file is empty"),
        ("k.tsv", b"id\ttext\n1\thello\n", "not the Amazon Customer Reviews schema"),
        ("k.tsv.gz", gzip.compress(b"a,b,c\n"), "not the Amazon Customer Reviews schema"),
        ("k.tsv", ",".join(REVIEW_COLUMNS).encode() + b"\n", "it looks comma-separated"),
        ("k.tsv", b"\xc3\x28bad\n", "row 1 \\(header\\): invalid UTF-8 at byte 0"),
        ("k.tsv", b"\xff\xfem\x00a\x00", "UTF-16 encoded"),
        ("k.tsv", gzip.compress(b"x"), "gzip-compressed but not named .gz"),
        ("k.tsv.gz", b"plain\n", "named .gz but not gzip-compressed"),
        ("k.tsv.gz", gzip.compress(b""), "no header line: the file holds no data after decompression"),
        ("k.tsv", b"PAR1\x15\x04", "a Parquet file named .tsv"),
    ],
)
def test_header_check_names_the_problem(name: str, content: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=f"^s3://b/{name}: .*{message}"):
        check_tsv_header(f"s3://b/{name}", content)


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"])
def test_header_check_accepts_a_bom_and_any_line_end(line_end: bytes) -> None:
    check_tsv_header("k.tsv", b"\xef\xbb\xbf" + "\t".join(REVIEW_COLUMNS).encode() + line_end + b"US\t1")


def test_unsupported_extension() -> None:
    with pytest.raises(SourceError, match="unsupported file type"):
        source_format("/data/reviews.csv")


def test_the_oldest_review_date_is_the_quality_suites() -> None:
    """Ingestion quarantines what the gate's date check would fail the whole run for."""
    suite = (Path(__file__).resolve().parents[3] / "include" / "quality" / "reviews_suite.yaml").read_text()
    assert f"review_date >= DATE'{EARLIEST_REVIEW_DATE.isoformat()}' AND review_date <= current_date()" in suite


def test_the_snapshot_manifest_fingerprints_its_content_not_its_files(tmp_path: Path) -> None:
    source, other = tmp_path / "in.tsv.gz", tmp_path / "other.tsv.gz"
    write_sample(source, SampleSpec(rows=600, seed=1))
    write_sample(other, SampleSpec(rows=600, seed=2))

    def manifest(name: str, path: Path) -> dict:
        result = ingest_with_duckdb([path], "tsv", tmp_path / name / "curated", tmp_path / name / "rejected")
        recorded = json.loads((result.curated_dir / SNAPSHOT_MANIFEST).read_text())
        assert recorded["rows"] == result.counts.accepted and "review_id" in recorded["columns"]
        return recorded

    first, again, changed = manifest("a", source), manifest("b", source), manifest("c", other)
    assert first["fingerprint"] == again["fingerprint"] != changed["fingerprint"]
