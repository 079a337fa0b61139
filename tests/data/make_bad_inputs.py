"""The bad-input corpus of ``reviews_ingest``: malformed sources, one file (or folder) each.

``python -m tests.data.make_bad_inputs [FOLDER]`` writes it (default ``tests/data/bad/``, where it
is committed); ``tests/dags/test_bad_inputs.py`` runs each through the DAG and states what
ingestion must make of it. Every file is generated from the sample generator's rows, so a file
is small and differs from a good one only where its name says. The one entry not committed is
``outside_roots.tsv``: a symlink to a good file outside the repository, made where it is used
(:func:`write_outside_link`).
"""

from __future__ import annotations

import argparse
import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from include.ingestion.schema import REVIEW_COLUMNS
from include.sample_data import SampleSpec, curated_records, curated_table, generate_rows

BAD = Path(__file__).resolve().parent / "bad"
GOOD_ROWS = 100
HEADER = "\t".join(REVIEW_COLUMNS)
HUGE_REVIEW_BYTES = 10 * 1024 * 1024
STAR, BODY, DATE = (REVIEW_COLUMNS.index(c) for c in ("star_rating", "review_body", "review_date"))
HELPFUL, TOTAL, REVIEW_ID = (REVIEW_COLUMNS.index(c) for c in ("helpful_votes", "total_votes", "review_id"))


def rows(seed: int, n: int = GOOD_ROWS) -> list[list[str]]:
    """``n`` well-formed rows (lists of the 15 fields); a different ``seed`` gives other review ids' content."""
    return [list(row) for row in generate_rows(SampleSpec(rows=n, seed=seed))]


def tsv(lines: list[list[str]] | list[str], header: str = HEADER, end: str = "\n") -> bytes:
    """A TSV file: the header, then each row (fields joined by tabs, or a line as it is), each ending in ``end``."""
    text = [header] + [line if isinstance(line, str) else "\t".join(line) for line in lines]
    return "".join(line + end for line in text).encode("utf-8")


def gz(data: bytes) -> bytes:
    """gzip without a timestamp, so the same content always gives the same bytes."""
    return gzip.compress(data, mtime=0)


def parquet(change: Callable[[pa.Table], pa.Table] = lambda table: table, seed: int = 1) -> bytes:
    """A Parquet file in the source schema (as the public dataset's), after ``change`` of its Arrow table."""
    buffer = io.BytesIO()
    pq.write_table(change(curated_table(curated_records(tuple(r) for r in rows(seed)))), buffer)
    return buffer.getvalue()


def with_field(row: list[str], index: int, value: str) -> list[str]:
    changed = list(row)
    changed[index] = value
    return changed


def replaced(seed: int, changes: dict[int, Callable[[list[str]], list[str] | str]]) -> list[list[str] | str]:
    """``GOOD_ROWS`` good rows with row ``i`` replaced by ``changes[i](row)`` (a row, or a raw line)."""
    return [changes[i](row) if i in changes else row for i, row in enumerate(rows(seed))]


def set_column(name: str, make: Callable[[pa.ChunkedArray], pa.Array]) -> Callable[[pa.Table], pa.Table]:
    """A table change replacing column ``name`` by ``make(column)``."""

    def change(table: pa.Table) -> pa.Table:
        return table.set_column(table.schema.get_field_index(name), name, make(table[name]))

    return change


def corrupt_data_page(data: bytes) -> bytes:
    """Flip bytes inside the first column chunk, leaving the footer readable."""
    damaged = bytearray(data)
    for i in range(64, 1024):
        damaged[i] ^= 0x5A
    return bytes(damaged)


def duplicate_rows() -> list[list[str]]:
    good = rows(21)
    conflicting = with_field(good[7], STAR, "1" if good[7][STAR] != "1" else "2")
    return good + [good[3], good[3], conflicting]  # two more copies of row 3; row 7 changed


def huge_review() -> list[list[str]]:
    good = rows(25, GOOD_ROWS + 1)
    sentence = "The build quality is fine but I would never call the manual easy to use. "
    body = (sentence * (HUGE_REVIEW_BYTES // len(sentence) + 1))[:HUGE_REVIEW_BYTES]
    return good[:-1] + [with_field(good[-1], BODY, body)]


@dataclass(frozen=True)
class BadInput:
    """One corpus entry: its name in the corpus folder, what is wrong with it, and its content."""

    name: str
    problem: str
    content: Callable[[], bytes]


CORPUS: tuple[BadInput, ...] = (
    BadInput("empty.tsv", "an empty file (0 bytes)", lambda: b""),
    BadInput("empty_after_gunzip.tsv.gz", "a gzip file holding nothing", lambda: gz(b"")),
    BadInput("header_only.tsv", "the header and no row", lambda: tsv([])),
    BadInput("truncated.tsv.gz", "a gzip file cut in the middle", lambda: gz(tsv(rows(2)))[:1500]),
    BadInput("not_gzip.tsv.gz", "plain TSV named .gz", lambda: tsv(rows(3))),
    BadInput("gzip_named_plain.tsv", "gzip-compressed TSV named .tsv", lambda: gz(tsv(rows(4)))),
    BadInput("comma_separated.tsv", "comma instead of tab as the delimiter", lambda: tsv(
        [",".join(r) for r in rows(5)], header=",".join(REVIEW_COLUMNS))),
    BadInput("missing_columns_header.tsv", "the header and rows lack vine and verified_purchase", lambda: tsv(
        [r[:10] + r[12:] for r in rows(6)], header="\t".join(REVIEW_COLUMNS[:10] + REVIEW_COLUMNS[12:]))),
    BadInput("extra_column_header.tsv", "the header and rows have a 16th column", lambda: tsv(
        [r + ["2015"] for r in rows(7)], header=HEADER + "\treview_year")),
    BadInput("utf16.tsv", "UTF-16 text (with its byte-order mark)", lambda: tsv(rows(8)).decode().encode("utf-16")),
    BadInput("invalid_utf8_header.tsv", "an undecodable byte in the header", lambda: b"market\xffplace" + tsv(rows(9))[11:]),
    BadInput("parquet_named_tsv.tsv", "a Parquet file named .tsv", lambda: parquet()),
    BadInput("tsv_named_parquet.parquet", "a TSV file named .parquet", lambda: tsv(rows(10))),
    BadInput("truncated.parquet", "a Parquet file cut before its footer", lambda: parquet()[:-300]),
    BadInput("corrupt_page.parquet", "a Parquet file with damaged data pages", lambda: corrupt_data_page(parquet())),
    BadInput("wrong_types.parquet", "Parquet with star_rating as double and review_date as string", lambda: parquet(
        lambda t: set_column("review_date", lambda c: c.cast(pa.string()))(
            set_column("star_rating", lambda c: c.cast(pa.float64()))(t)))),
    BadInput("nested_column.parquet", "Parquet with review_body as a list of strings", lambda: parquet(
        set_column("review_body", lambda c: pa.array([[v] for v in c.to_pylist()])))),
    BadInput("missing_column.parquet", "Parquet without review_body", lambda: parquet(lambda t: t.drop_columns(["review_body"]))),
    BadInput("a_folder.tsv/part-0.tsv", "a folder named .tsv (Spark-style parts) given as the source", lambda: tsv(rows(11))),
    BadInput("reviews.csv", "an unsupported extension (.csv)", lambda: tsv(rows(12))),
    BadInput("star_rating_floats.tsv", 'every star_rating written as a float ("5.0")', lambda: tsv(
        [with_field(r, STAR, f"{r[STAR]}.0") for r in rows(13)])),
    BadInput("bom.tsv", "a UTF-8 byte-order mark before the header", lambda: b"\xef\xbb\xbf" + tsv(rows(14))),
    BadInput("crlf.tsv", "Windows line ends (CRLF)", lambda: tsv(rows(15), end="\r\n")),
    BadInput("cr_only.tsv", "old Mac line ends (CR only)", lambda: tsv(rows(16), end="\r")),
    BadInput("blank_lines.tsv", "empty lines between and after the rows", lambda: tsv(
        rows(17)[:40] + [""] + rows(17)[40:] + ["", ""])),
    BadInput("quoted_tab.tsv", "a quoted field holding a tab", lambda: tsv(replaced(18, {
        9: lambda r: with_field(r, BODY, '"Great\tproduct"')}))),
    BadInput("quoted_newline.tsv", "a quoted field holding a newline", lambda: tsv(replaced(19, {
        9: lambda r: with_field(r, BODY, '"Great\nproduct"')}))),
    BadInput("invalid_utf8_rows.tsv", "undecodable bytes in two rows", lambda: tsv(rows(20)).replace(
        b"\tN\t", b"\tN\xff\xfe\t", 2)),
    BadInput("huge_review.tsv.gz", "a 10 MB review body", lambda: gz(tsv(huge_review()))),
    BadInput("header_repeated.tsv", "the header repeated in the middle (two files concatenated)", lambda: tsv(
        rows(22)[:50] + [HEADER] + rows(22)[50:])),
    BadInput("concatenated.tsv.gz", "two gzip files concatenated (two members, two headers)", lambda: gz(
        tsv(rows(23)[:50])) + gz(tsv(rows(23)[50:]))),
    BadInput("duplicate_ids.tsv", "a review twice more, and one id on two different rows", lambda: tsv(duplicate_rows())),
    BadInput("duplicate_ids_across_a.tsv", "ids shared with the next file (run 1 of 2)", lambda: tsv(rows(24))),
    BadInput("duplicate_ids_across_b.tsv", "ids shared with the previous file (run 2 of 2)", lambda: tsv(
        rows(24)[50:] + rows(26)[:50])),
    BadInput("star_rating_variants.tsv", 'star_rating "5.0", "five", "0" and empty', lambda: tsv(replaced(27, {
        10: lambda r: with_field(r, STAR, "5.0"), 20: lambda r: with_field(r, STAR, "five"),
        30: lambda r: with_field(r, STAR, "0"), 40: lambda r: with_field(r, STAR, "")}))),
    BadInput("dates.tsv", "review dates in the future, impossible, before 1995 and not ISO", lambda: tsv(replaced(28, {
        10: lambda r: with_field(r, DATE, "2999-01-01"), 20: lambda r: with_field(r, DATE, "2015-02-30"),
        30: lambda r: with_field(r, DATE, "1900-01-01"), 40: lambda r: with_field(r, DATE, "2015/03/04")}))),
    BadInput("negative_votes.tsv", "negative helpful and total votes", lambda: tsv(replaced(29, {
        10: lambda r: with_field(r, HELPFUL, "-1"), 20: lambda r: with_field(with_field(r, HELPFUL, "0"), TOTAL, "-3")}))),
    BadInput("short_rows.tsv", "two rows missing their last two columns", lambda: tsv(replaced(30, {
        10: lambda r: r[:-2], 20: lambda r: r[:-2]}))),
    BadInput("long_rows.tsv", "rows with one and two extra columns", lambda: tsv(replaced(31, {
        10: lambda r: r + ["x"], 20: lambda r: r + ["x", "y"]}))),
    BadInput("sql_in_fields.tsv", "SQL and quotes inside the text fields", lambda: tsv(replaced(32, {
        10: lambda r: with_field(r, BODY, "'); DROP TABLE reviews_curated; --"),
        20: lambda r: with_field(r, BODY, 'He said "it\'s \\\' OR 1=1 --" and left')}))),
    BadInput("glob_and_quote_[1]'s.tsv", "a file name with glob characters and a quote", lambda: tsv(rows(33))),
    BadInput("parquet_extra_column.parquet", "Parquet with an extra column", lambda: parquet(
        lambda t: t.append_column("review_year", pa.array([2015] * t.num_rows, pa.int32())))),
    BadInput("parquet_nulls.parquet", "Parquet with a null star_rating and a null review_body", lambda: parquet(
        lambda t: set_column("review_body", lambda c: pa.array([None if i == 20 else v for i, v in enumerate(c.to_pylist())]))(
            set_column("star_rating", lambda c: pa.array(
                [None if i == 10 else v for i, v in enumerate(c.to_pylist())], pa.int32()))(t)))),
)
OUTSIDE_LINK = "outside_roots.tsv"
# What each input of the corpus is, by its name (what the bad-input tests' records say).
PROBLEMS = {Path(entry.name).parts[0]: entry.problem for entry in CORPUS} | {
    OUTSIDE_LINK: "a symlink out of the allowed storage roots (to a good file)",
}
SECTION = "Bad inputs"  # their section of docs/reliability.md


def write_corpus(folder: Path = BAD) -> list[Path]:
    """Write every :data:`CORPUS` entry under ``folder``; returns their paths."""
    written = []
    for entry in CORPUS:
        path = folder / entry.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(entry.content())
        written.append(path)
    return written


def write_outside_link(folder: Path, outside: Path) -> Path:
    """``folder/outside_roots.tsv``: a symlink to a good TSV written in ``outside`` (a folder out of the allowed roots)."""
    outside.mkdir(parents=True, exist_ok=True)
    target = outside / "reviews.tsv"
    target.write_bytes(tsv(rows(34)))
    link = folder / OUTSIDE_LINK
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    return link


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=BAD)
    args = parser.parse_args(argv)
    written = write_corpus(args.folder)
    print(f"wrote {len(written)} files under {args.folder}")


if __name__ == "__main__":
    main()
