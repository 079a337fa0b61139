"""The bad-input corpus (tests/data/bad/, written by tests/data/make_bad_inputs.py) through reviews_ingest.

Every input ends in one of three ways, and the test says which for each:

* a task fails at once with a ``BadInputError`` (the retry policy's "no retry") naming the file
  and what is wrong, also recorded in the run summary's ``ingest`` section;
* the run succeeds with every row accounted for: the data lines counted here, independently of
  the engine, equal accepted + excluded + rejected; the rejected rows are quarantined with the
  expected reasons and the curated snapshot holds exactly the accepted rows;
* the trigger form refuses the value and no run starts.

Most inputs run the ingest DAG's two tasks in-process (``stage_raw`` then ``ingest``, their
operators' ``execute``: milliseconds each); the few in ``THROUGH_DAG`` run the real DAG with
``dag.test()`` (about a second each when a task refuses the input), where the page in the alert
log and the try number are checked too; ``tests/scripts/test_make_ingest.py`` takes three through
``make ingest``. Each test writes a record for docs/reliability.md (``make reliability``).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from include.errors import BadInputError
from include.ingestion.schema import REVIEW_COLUMNS, staged_name
from tests.conftest import AWS_CONN_ID, task_context
from tests.dags.conftest import DAGS_FOLDER
from tests.data.make_bad_inputs import BAD, OUTSIDE_LINK, PROBLEMS, SECTION, write_corpus, write_outside_link
from tests.reliability import ReliabilityRecord

pytestmark = pytest.mark.reliability
CONF = {"min_rows": 50}  # the corpus files hold about 100 rows; the gate's size check is not what they test


@dataclass(frozen=True)
class Fails:
    """The run fails at ``task``, at once, with ``error`` naming the file and saying ``says``."""

    task: str
    error: str
    says: str


@dataclass(frozen=True)
class Quarantines:
    """The run succeeds; ``rejected`` rows (by reason; ``{run_date}`` is the run's date) are quarantined."""

    rejected: dict[str, int]


@dataclass(frozen=True)
class FormRefuses:
    """The trigger form refuses the source: no run starts."""

    says: str


def columns(found: int) -> str:
    return f"row: expected 15 tab-separated columns, found {found}"


STAR = "star_rating: not an integer 1..5"
EXPECTED: dict[str, Fails | Quarantines | FormRefuses] = {
    "empty.tsv": Fails("stage_raw", "SourceError", "file is empty"),
    "empty_after_gunzip.tsv.gz": Fails("stage_raw", "SourceError", "no header line: the file holds no data after decompression"),
    "header_only.tsv": Fails("ingest", "RejectedShareError", "no data rows after the header"),
    "truncated.tsv.gz": Fails("ingest", "SourceError", "not a readable gzip file"),
    "not_gzip.tsv.gz": Fails("stage_raw", "SourceError", "named .gz but not gzip-compressed"),
    "gzip_named_plain.tsv": Fails("stage_raw", "SourceError", "gzip-compressed but not named .gz; name it .tsv.gz"),
    "comma_separated.tsv": Fails("stage_raw", "SourceError", "it looks comma-separated: reviewflow reads tab-separated files"),
    "missing_columns_header.tsv": Fails("stage_raw", "SourceError", "missing ['vine', 'verified_purchase'], unexpected none"),
    "extra_column_header.tsv": Fails("stage_raw", "SourceError", "missing none, unexpected ['review_year']"),
    "utf16.tsv": Fails("stage_raw", "SourceError", "UTF-16 encoded (it starts with a UTF-16 byte-order mark); save it as UTF-8"),
    "invalid_utf8_header.tsv": Fails("stage_raw", "SourceError", "row 1 (header): invalid UTF-8 at byte 6"),
    "parquet_named_tsv.tsv": Fails("stage_raw", "SourceError", "a Parquet file named .tsv; name it .parquet"),
    "tsv_named_parquet.parquet": Fails("stage_raw", "SourceError", "not a Parquet file: it does not start with PAR1"),
    "truncated.parquet": Fails("stage_raw", "SourceError", "an incomplete Parquet file: it does not end with PAR1 (truncated?)"),
    "corrupt_page.parquet": Fails("ingest", "SourceError", "unreadable parquet data"),
    "wrong_types.parquet": Fails(
        "stage_raw", "SourceError", "star_rating is double, expected int32; review_date is string, expected date32[day]"
    ),
    "nested_column.parquet": Fails("stage_raw", "SourceError", "review_body is list<element: string>, expected string"),
    "missing_column.parquet": Fails("stage_raw", "SourceError", "Parquet schema lacks column(s) review_body"),
    "a_folder.tsv": Fails("stage_raw", "SourceError", "is a folder, not a file"),
    OUTSIDE_LINK: Fails("stage_raw", "OutsideAllowedRootsError", "outside the allowed storage roots"),
    "reviews.csv": FormRefuses(r"does not match '^\\S+\\.(tsv|tsv\\.gz|parquet)$'"),
    "star_rating_floats.tsv": Fails(
        "ingest", "RejectedShareError",
        f"rejected 100 of 100 rows (100.0%), above the 5.0% threshold set by the param max_rejected_share ({STAR}: 100)",
    ),
    "bom.tsv": Quarantines({}),
    "crlf.tsv": Quarantines({}),
    "cr_only.tsv": Quarantines({}),
    "blank_lines.tsv": Quarantines({}),
    "quoted_tab.tsv": Quarantines({columns(16): 1}),
    "quoted_newline.tsv": Quarantines({columns(14): 1, columns(2): 1}),
    "invalid_utf8_rows.tsv": Quarantines({"row: invalid UTF-8": 2}),
    "huge_review.tsv.gz": Quarantines({"row: line longer than 4 MiB": 1}),
    "header_repeated.tsv": Quarantines({"row: a repeated header line": 1}),
    "concatenated.tsv.gz": Quarantines({"row: a repeated header line": 1}),
    "duplicate_ids.tsv": Quarantines(
        {"review_id: duplicate of an identical row": 2, "review_id: shared by rows with different content": 2}
    ),
    "star_rating_variants.tsv": Quarantines({STAR: 4}),
    "dates.tsv": Quarantines({
        "review_date: after the run date {run_date}": 1,
        "review_date: not a YYYY-MM-DD date": 2,
        "review_date: before 1995-01-01": 1,
    }),
    "negative_votes.tsv": Quarantines(
        {"helpful_votes: not a non-negative integer": 1, "total_votes: not a non-negative integer": 1}
    ),
    "short_rows.tsv": Quarantines({columns(13): 2}),
    "long_rows.tsv": Quarantines({columns(16): 1, columns(17): 1}),
    "sql_in_fields.tsv": Quarantines({}),
    "glob_and_quote_[1]'s.tsv": Quarantines({}),
    "parquet_extra_column.parquet": Quarantines({}),
    "parquet_nulls.parquet": Quarantines({STAR: 1, "review_body: empty": 1}),
}
ACROSS_RUNS = ("duplicate_ids_across_a.tsv", "duplicate_ids_across_b.tsv")  # test_ids_repeated_across_runs
# Through the real DAG: a staging refusal, a refusal by the ingest task, a trigger-form refusal.
THROUGH_DAG = ("empty.tsv", "truncated.tsv.gz", "reviews.csv")


def test_every_corpus_entry_has_an_expectation() -> None:
    assert set(EXPECTED) | set(ACROSS_RUNS) == set(PROBLEMS)
    assert len(PROBLEMS) >= 25


def test_the_committed_corpus_is_what_the_generator_writes(tmp_path: Path) -> None:
    def content(path: Path) -> bytes:  # gzip compared inflated: another zlib may deflate differently
        data = path.read_bytes()
        if not data.startswith(b"\x1f\x8b"):
            return data
        try:
            return gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile):  # the truncated one: what inflates
            return zlib.decompressobj(wbits=31).decompress(data)

    written = write_corpus(tmp_path)
    committed = sorted(p.relative_to(BAD) for p in BAD.rglob("*") if p.is_file())
    assert committed == sorted(p.relative_to(tmp_path) for p in written)
    assert [name for name in committed if content(BAD / name) != content(tmp_path / name)] == []




@pytest.fixture(scope="module")
def ingest_dag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """reviews_ingest, parsed once for the module (each test sets its own data root before running it)."""
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REVIEWFLOW_BACKEND", "local")
        patch.setenv("REVIEWFLOW_DATA_ROOT", str(tmp_path_factory.mktemp("parse-root")))
        dag = DagBag(dag_folder=str(DAGS_FOLDER)).dags["reviews_ingest"]
    for task in dag.tasks:  # a regression to a retried error must fail the test, not wait minutes
        task.retry_delay = dt.timedelta(seconds=1)
    yield dag


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data root; sources may be read from it, the test's tmp folder and the corpus."""
    root = tmp_path / "data"
    monkeypatch.setenv("REVIEWFLOW_BACKEND", "local")
    monkeypatch.setenv("REVIEWFLOW_DATA_ROOT", str(root))
    monkeypatch.setenv("REVIEWFLOW_ALERT_LOG", str(root / "alerts.jsonl"))
    monkeypatch.setenv("REVIEWFLOW_ALLOWED_ROOTS", f"{tmp_path},{BAD}")
    return root


@dataclass
class Outcome:
    """What a run made of one input: the task that failed and its error (``<class>: <message>``),
    or the ``ingest`` task's result (counts, curated and rejected locations) and the run's date."""

    failed_task: str | None = None
    error: str = ""
    ingested: dict[str, Any] | None = None
    run_date: str = ""


def run_in_process(source: Path, run_id: str = "manual__bad-input") -> Outcome:
    """The DAG's ``stage_raw`` and ``ingest`` tasks on ``source``, their operators executed here."""
    from reviewflow.operators.ingest import CurateReviewsLocalOperator, StageRawReviewsOperator

    context = task_context("reviews_ingest", "stage_raw", run_id)
    task_id = "stage_raw"
    try:
        staged = StageRawReviewsOperator(task_id=task_id, source_uri=str(source), aws_conn_id=AWS_CONN_ID).execute(context)
        task_id = "ingest"
        ingested = CurateReviewsLocalOperator(task_id=task_id, staged=staged, aws_conn_id=AWS_CONN_ID).execute(context)
    except BadInputError as error:  # what the retry policy fails at once
        return Outcome(failed_task=task_id, error=f"{type(error).__name__}: {error}")
    return Outcome(ingested=ingested, run_date=staged["latest_review_date"])


def run_through_dag(dag: Any, source: Path, data_root: Path) -> Outcome:
    """A real run of reviews_ingest on ``source``; a failed task must have paged, on its first try."""
    dag_run = dag.test(run_conf={"source_uri": str(source)} | CONF)
    failed = [ti for ti in dag_run.get_task_instances() if ti.state == "failed"]
    if not failed:
        assert dag_run.state == "success"
        run_date = dag_run.run_after.astimezone(dt.UTC).date().isoformat()
        return Outcome(ingested=summary_of(data_root)["ingest"], run_date=run_date)
    [ti] = failed
    assert dag_run.state == "failed" and ti.try_number == 1  # a verdict about the input: no retry
    alerts = [json.loads(line) for line in (data_root / "alerts.jsonl").read_text().splitlines()]
    [page] = [a["message"] for a in alerts if a.get("run_id") == dag_run.run_id and a.get("task_id") == ti.task_id]
    reason = next(line for line in page.splitlines() if line.startswith("Error: "))
    return Outcome(failed_task=ti.task_id, error=reason.removeprefix("Error: "))


def source_of(name: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if name == OUTSIDE_LINK:  # a link in an allowed folder to a file in a folder that is not
        (tmp_path / "links").mkdir()
        return write_outside_link(tmp_path / "links", tmp_path_factory.mktemp("outside-the-roots"))
    return BAD / name


def data_lines(source: Path) -> int:
    """The rows of ``source`` counted without the engine: non-empty lines after the header (LF, CRLF or CR
    ends; gzip members all read), or the Parquet footer's row count."""
    if source.suffix == ".parquet":
        return pq.read_metadata(source).num_rows
    data = source.read_bytes()
    if source.suffix == ".gz":
        data = gzip.decompress(data)
    return sum(1 for line in re.split(rb"\r\n|\r|\n", data) if line) - 1


def source_texts(source: Path) -> set[tuple[str, str, str]]:
    """(review_id, review_headline, review_body) of every row of ``source`` that has 15 fields, read here."""
    if source.suffix == ".parquet":
        table = pq.read_table(source, columns=["review_id", "review_headline", "review_body"])
        return set(zip(*(table[c].to_pylist() for c in table.column_names), strict=True))
    data = source.read_bytes()
    if source.suffix == ".gz":
        data = gzip.decompress(data)
    fields = [line.decode("utf-8", "replace").split("\t") for line in re.split(rb"\r\n|\r|\n", data)]
    at = [REVIEW_COLUMNS.index(c) for c in ("review_id", "review_headline", "review_body")]
    return {tuple(row[i] for i in at) for row in fields if len(row) == len(REVIEW_COLUMNS)}


def summary_of(data_root: Path) -> dict[str, Any]:
    [path] = (data_root / "reports").glob("*/summary.json")
    return json.loads(path.read_text())


def curated_rows(curated_uri: str, columns: str) -> list[tuple[Any, ...]]:
    return duckdb.sql(f"SELECT {columns} FROM read_parquet('{curated_uri}/*/*.parquet')").fetchall()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input(
    name: str, ingest_dag, data_root: Path, tmp_path: Path, tmp_path_factory, reliability: ReliabilityRecord
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    expected = EXPECTED[name]
    source = source_of(name, tmp_path, tmp_path_factory)
    through_dag = name in THROUGH_DAG
    reliability.section, reliability.case, reliability.tried = SECTION, name, PROBLEMS[name]
    reliability.path = "dag.test()" if through_dag else "stage_raw + ingest in-process"

    if isinstance(expected, FormRefuses):
        assert through_dag  # the form is the DAG's
        with pytest.raises(ParamValidationError) as refused:
            ingest_dag.test(run_conf={"source_uri": str(source)} | CONF)
        reliability.outcome = f"refused by the trigger form, no run: {str(refused.value).splitlines()[0]}"
        assert "Invalid input for param source_uri" in str(refused.value) and expected.says in str(refused.value)
        return

    outcome = run_through_dag(ingest_dag, source, data_root) if through_dag else run_in_process(source)

    if isinstance(expected, Fails):
        reliability.outcome = f"{outcome.failed_task} failed{' on try 1, paged' if through_dag else ''}: {outcome.error}"
        assert outcome.failed_task == expected.task, outcome
        # The error names the file (as given, or as staged for ingest) and what is wrong with it.
        named = str(source) if expected.task == "stage_raw" else staged_name(str(source))
        assert outcome.error.startswith(f"{expected.error}: ") and named in outcome.error, outcome.error
        assert expected.says in outcome.error, outcome.error
        ingest = summary_of(data_root)["ingest"]
        assert ingest["status"] == "failed" and ingest["error"] == outcome.error.removeprefix(f"{expected.error}: ")
        assert not list((data_root / "curated").glob("reviews/snapshot=*"))  # nothing published
        return

    assert isinstance(expected, Quarantines) and outcome.ingested is not None, outcome
    counts = outcome.ingested["counts"]
    reasons = "; ".join(f"{reason}: {rows}" for reason, rows in counts["rejected_by_reason"].items())
    reliability.outcome = (
        f"succeeded: {counts['input_rows']} rows = {counts['accepted']} accepted + {counts['excluded']} excluded + "
        f"{counts['rejected']} quarantined" + (f" ({reasons})" if reasons else "")
    )
    assert counts["rejected_by_reason"] == {r.format(run_date=outcome.run_date): n for r, n in expected.rejected.items()}
    assert counts["input_rows"] == data_lines(source)  # counted here, not by the engine
    assert counts["input_rows"] == counts["accepted"] + counts["excluded"] + counts["rejected"]
    assert sum(counts["rejected_by_reason"].values()) == counts["rejected"]
    rejected = duckdb.sql(f"SELECT reject_reason FROM read_parquet('{outcome.ingested['rejected_uri']}/*.parquet')").fetchall()
    assert sorted(r for (r,) in rejected) == sorted(r for r, n in counts["rejected_by_reason"].items() for _ in range(n))
    curated = curated_rows(outcome.ingested["curated_uri"], "review_id, review_headline, review_body")
    # The curated rows are source rows as they were (quotes and SQL in the text kept, no CR or BOM
    # picked up from line ends), one per review id.
    assert len(curated) == len({review_id for review_id, _, _ in curated}) == counts["accepted"]
    assert set(curated) <= source_texts(source)


def test_ids_repeated_across_runs_are_each_snapshots_own(data_root: Path, reliability: ReliabilityRecord) -> None:
    """Each run's snapshot is what its source holds: a review id seen in an earlier run's snapshot is no
    duplicate (the newer snapshot has the newer content); duplicates are looked for within a run."""
    reliability.section, reliability.case = SECTION, " + ".join(ACROSS_RUNS)
    reliability.path = "stage_raw + ingest in-process, two runs"
    reliability.tried = "two files sharing every review id (50 rows the same, 50 changed), ingested one after the other"
    outcomes = [run_in_process(BAD / name, run_id=f"manual__run-{i}") for i, name in enumerate(ACROSS_RUNS)]
    assert all(o.ingested and o.ingested["counts"]["accepted"] == 100 for o in outcomes), outcomes
    first, second = (dict(curated_rows(o.ingested["curated_uri"], "review_id, review_body")) for o in outcomes)
    assert len(first) == len(second) == 100 and set(first) == set(second)
    changed = sum(first[review] != second[review] for review in first)
    reliability.outcome = f"both runs succeeded, 100 of 100 rows accepted each; {changed} ids differ in content between the snapshots"
    assert changed == 50
