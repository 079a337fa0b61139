"""The ``local`` ingestion engine: DuckDB runs the field checks Athena runs, and the same review-id rule by rowid."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from include.atomic import staged_directory
from include.caching import SNAPSHOT_MANIFEST, content_fingerprint
from include.ingestion.counts import IngestCounts, check_counts
from include.ingestion.schema import SourceError, SourceFormat
from include.ingestion.sql import checked_relation, duckdb_raw_relation, quote_literal, selects, source_name, sql_template

log = logging.getLogger(__name__)

# Why DuckDB's reader could not turn a line into a row, by its error type (SQL over reject_errors ``e``).
WRONG_COLUMN_COUNT = "'row: expected 15 tab-separated columns, found ' || CAST(len(string_split(e.csv_line, chr(9))) AS VARCHAR)"
READER_REJECT_REASONS = {
    "INVALID ENCODING": "'row: invalid UTF-8'",
    "MISSING COLUMNS": WRONG_COLUMN_COUNT,
    "TOO MANY COLUMNS": WRONG_COLUMN_COUNT,
    "LINE SIZE OVER MAXIMUM": "'row: line longer than 4 MiB'",
}


@dataclass(frozen=True)
class LocalIngestResult:
    """Counts plus where the curated and rejected datasets were committed."""

    counts: IngestCounts
    curated_dir: Path
    rejected_dir: Path


def ingest_with_duckdb(
    source_files: list[Path],
    fmt: SourceFormat,
    curated_dir: Path,
    rejected_dir: Path,
    categories: list[str] | None = None,
    max_rejected_share: float = 0.05,
    memory_limit: str = "1GB",
    latest_review_date: dt.date | None = None,
) -> LocalIngestResult:
    """Classify ``source_files`` and commit the rejected, then the curated dataset.

    The sources were checked by the staging task (header, Parquet schema). The rejected rows
    are always committed (they explain a failure); the curated snapshot, partitioned by
    ``product_category``, only when :func:`check_counts` passes.

    :param latest_review_date: the newest acceptable ``review_date``: the run's date (default today, UTC).
    """
    import duckdb

    files = [str(f) for f in source_files]
    newest = latest_review_date or dt.datetime.now(dt.UTC).date()
    con = duckdb.connect(config={"memory_limit": memory_limit, "preserve_insertion_order": False})
    try:
        con.execute(f"SET temp_directory = {quote_literal(str(curated_dir.parent / '.duckdb-spill'))}")
        with readable_copies(source_files, curated_dir.with_name(f".{curated_dir.name}.decompressed")) as read_as:
            raw = duckdb_raw_relation(fmt, read_as)
            try:
                checked = checked_relation(raw, "duckdb", newest)
                con.execute(f"CREATE TEMP TABLE classified AS SELECT *, field_reject_reason AS reject_reason FROM {checked}")
            except duckdb.Error as error:
                # Input the reader cannot decode at all (a damaged Parquet page or header), as opposed to
                # rows it rejects: InvalidInputException, or DuckDB's bare Error from its Thrift decoder.
                # Faults (I/O, memory) and SQL errors are other subclasses and stay what they are.
                if not isinstance(error, duckdb.InvalidInputException) and type(error) is not duckdb.Error:
                    raise
                reason = str(error).splitlines()[0].strip()
                raise SourceError(f"{', '.join(files)}: unreadable {fmt} data ({reason})") from error
            con.execute(sql_template("duckdb/reject_repeated_review_ids"))
            if fmt == "tsv":
                _add_reader_rejects(con, read_as)
        queries = selects("classified", categories)
        counts = IngestCounts.from_outcomes(con.execute(queries["counts"]).fetchall())
        with staged_directory(rejected_dir) as staging:
            con.execute(f"COPY ({queries['rejected']}) TO {quote_literal(str(staging / 'rejected.parquet'))} (FORMAT PARQUET)")
        log.info("ingested %s: %s", ", ".join(files), counts.to_dict())
        check_counts(counts, ", ".join(files), max_rejected_share, categories)
        with staged_directory(curated_dir) as staging:
            con.execute(
                f"COPY ({queries['curated']}) TO {quote_literal(str(staging))} "
                "(FORMAT PARQUET, PARTITION_BY (product_category), OVERWRITE_OR_IGNORE)"
            )
            manifest = snapshot_manifest(con, queries["curated"])
            (staging / SNAPSHOT_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    finally:
        con.close()
    return LocalIngestResult(counts, curated_dir, rejected_dir)


def snapshot_manifest(con: object, curated_query: str) -> dict[str, object]:
    """The curated snapshot's manifest: its rows, columns and content fingerprint (order-independent:
    the count and the sum of DuckDB's row hashes), committed with the snapshot for the cached steps downstream."""
    import duckdb

    columns = [column[0] for column in con.execute(f"SELECT * FROM ({curated_query}) LIMIT 0").description]  # type: ignore[attr-defined]
    rows, row_hash_sum = con.execute(  # type: ignore[attr-defined]
        f"SELECT count(*), coalesce(sum(hash(c)::HUGEINT), 0) FROM ({curated_query}) c"
    ).fetchone()
    fingerprint = content_fingerprint(f"duckdb-{duckdb.__version__}", columns, int(rows), int(row_hash_sum))
    return {"rows": int(rows), "columns": columns, "fingerprint": fingerprint}


@contextmanager
def readable_copies(source_files: list[Path], scratch: Path) -> Iterator[dict[str, str]]:
    """Map the path DuckDB should read to each source's name, decompressing gzip first.

    DuckDB parses a gzip file on one thread; a plain copy (inflated by ISA-L, about twice
    as fast as zlib) is parsed by all of them. The copies live in the hidden folder
    ``scratch``, emptied first (what a killed try left there) and removed on exit; line
    numbers are unchanged, so quarantined rows still point into the source file.
    """
    from isal import igzip
    from isal.igzip_lib import IsalError

    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        read_as = {}
        for index, source in enumerate(source_files):
            if source.suffix.lower() != ".gz":
                read_as[str(source)] = str(source)
                continue
            copy = scratch / f"{index:05d}-{source.stem}"
            try:
                with igzip.open(source, "rb") as compressed, copy.open("wb") as plain:
                    shutil.copyfileobj(compressed, plain, 4 << 20)
            except (EOFError, igzip.BadGzipFile, IsalError) as error:
                raise SourceError(f"{source}: not a readable gzip file ({error})") from error
            read_as[str(copy)] = str(source)
        yield read_as
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _add_reader_rejects(con: object, read_as: dict[str, str]) -> None:
    """Add the lines DuckDB's reader rejected to ``classified``, one row per line with its reason.

    The reader logs one error per missing column, so a line can have several errors.
    """
    reasons = " ".join(f"WHEN {quote_literal(k)} THEN {v}" for k, v in READER_REJECT_REASONS.items())
    con.execute(  # type: ignore[attr-defined]
        f"""
        INSERT INTO classified BY NAME
        SELECT DISTINCT ON (s.file_path, e.line)
               {source_name("s.file_path", read_as)} AS source_file,
               CAST(e.line AS BIGINT) AS source_line,
               CASE CAST(e.error_type AS VARCHAR) {reasons} ELSE 'row: ' || e.error_message END AS reject_reason,
               string_split(e.csv_line, chr(9))[3] AS review_id
        FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id)
        ORDER BY s.file_path, e.line, e.column_idx
        """
    )
