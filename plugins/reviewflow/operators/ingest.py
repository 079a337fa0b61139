"""Operators of ``reviews_ingest``: stage raw input, curate it (DuckDB or Athena), publish.

Both backends end in a task ``ingest`` returning the same XCom::

    {"snapshot": ..., "curated_uri": ..., "rejected_uri": ..., "format": ..., "counts": {...}}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowException

from include.allowed_roots import resolve_within
from include.config import Settings, load_settings
from include.errors import BadInputError
from include.ingestion.athena import athena_statement, request_token, run_objects
from include.ingestion.counts import IngestCounts, RejectedShareError, check_counts
from include.ingestion.local import ingest_with_duckdb
from include.ingestion.schema import (
    SourceError,
    SourceFormat,
    check_parquet_schema,
    check_tsv_header,
    parquet_footer_size,
    source_format,
    staged_name,
)
from include.lineage_datasets import athena_table_dataset, storage_dataset
from include.uris import is_s3, join_uri, local_path, split_s3
from reviewflow.metrics import emit_ingest_counts
from reviewflow.operators.base import AWS_TEMPLATE_FIELDS, AwsConnectedOperator
from reviewflow.run_summary import update_run_summary
from reviewflow.runs import run_key, run_key_of
from reviewflow.settings import load_aws_settings

if TYPE_CHECKING:
    import jinja2

HEADER_PROBE_BYTES = 64 * 1024


def latest_snapshot_uri(data_root: str) -> str:
    """The pointer to the newest published curated snapshot (``_`` keeps Spark and Hive from reading it as data)."""
    return join_uri(data_root, "curated", "reviews", "_latest.json")


def snapshot_uris(data_root: str, snapshot: str) -> dict[str, str]:
    """Where the curated and rejected datasets of ``snapshot`` live."""
    return {
        "curated_uri": join_uri(data_root, "curated", "reviews", f"snapshot={snapshot}"),
        "rejected_uri": join_uri(data_root, "rejected", "reviews", f"snapshot={snapshot}"),
    }


class StageRawReviewsOperator(AwsConnectedOperator):
    """Check a raw reviews file and copy it into the raw zone under the run's key.

    The source must lie inside the allowed storage roots (``REVIEWFLOW_ALLOWED_ROOTS``; a local
    path is resolved, symlinks and ``..`` included, before the check and read as resolved), be a
    file, not be empty and start like its format (TSV: the 15-column header; Parquet: the
    source schema in its footer). A source that fails a check fails the task at once and
    records the error in the run summary's ``ingest`` section.

    Returns the staged source: ``source_uri`` (as given), ``raw_uri``, ``raw_dir``, ``format``,
    ``bytes``, ``checksum`` (of the staged copy: ``sha256:…`` locally, the S3 ``etag:…``) and ``latest_review_date`` (the run's date, ISO: newer reviews are rejected).

    :param source_uri: TSV, TSV.gz or Parquet file: a local path, ``file://`` or ``s3://`` URI. (templated)
    :param aws_conn_id: the connection of every S3 call (source, raw zone, run summary). (templated)
    :param region_name: their region; ``None``: the connection's. (templated)
    """

    template_fields: Sequence[str] = (*AWS_TEMPLATE_FIELDS, "source_uri")

    def __init__(self, *, source_uri: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_uri = source_uri

    def execute(self, context: Any) -> dict[str, Any]:
        settings = load_settings()
        source = self.source_uri.strip()
        key = run_key(context)
        try:
            readable, fmt, size = self._check(settings, source)
        except BadInputError as error:
            update_run_summary(
                settings, key, "ingest", {"status": "failed", "source_uri": source, "error": str(error)},
                **self.aws_connection,
            )
            raise
        raw_dir = join_uri(settings.data_root, "raw", "reviews", f"run={key}")
        raw_uri = join_uri(raw_dir, staged_name(source))
        storage = self.storage(raw_uri)
        storage.copy(readable, raw_uri)
        self.report_lineage([storage_dataset(readable)], [storage_dataset(raw_uri)])
        self.log.info("staged %s (%d bytes) at %s", source if readable == source else f"{source} ({readable})", size, raw_uri)
        return {
            "source_uri": source,
            "raw_uri": raw_uri,
            "raw_dir": raw_dir,
            "format": fmt,
            "bytes": size,
            "checksum": storage.checksum(raw_uri),
            "latest_review_date": context["dag_run"].run_after.astimezone(dt.UTC).date().isoformat(),
        }

    def _check(self, settings: Settings, source: str) -> tuple[str, SourceFormat, int]:
        """The location to read ``source`` from, its format and size, once every check passed."""
        fmt = source_format(source)
        if settings.backend == "aws" and not is_s3(source):
            raise SourceError(f"{source}: the aws backend reads sources from S3; upload it and pass its s3:// URI")
        readable = resolve_within(source, settings.allowed_roots, param="source_uri")
        storage = self.storage(readable)
        if storage.is_folder(readable):
            raise SourceError(f"{source}: is a folder, not a file; give one .tsv, .tsv.gz or .parquet file")
        if not storage.exists(readable):
            raise SourceError(f"{source}: file not found")
        size = storage.size(readable)
        if size == 0:
            raise SourceError(f"{source}: file is empty")
        if fmt == "tsv":
            check_tsv_header(source, storage.read_bytes(readable, HEADER_PROBE_BYTES))
        else:
            footer_size = parquet_footer_size(source, storage.read_bytes(readable, 8), storage.read_tail(readable, 8))
            check_parquet_schema(source, storage.read_tail(readable, footer_size))
        return readable, fmt, size


class IngestStepOperator(AwsConnectedOperator):
    """What both backends' ``ingest`` task takes; each key of its XCom is an XCom of its own too (``output["curated_uri"]``).

    :param staged: the XCom of the staging task. (templated)
    :param categories: keep only these product categories (all when empty). (templated)
    :param max_rejected_share: fail when more than this share of rows is rejected. (templated)
    :param aws_conn_id: the connection of every AWS call (Athena, the run summary on S3). (templated)
    :param region_name: their region; ``None``: the connection's. (templated)
    """

    template_fields: Sequence[str] = (*AWS_TEMPLATE_FIELDS, "staged", "categories", "max_rejected_share")
    template_fields_renderers = {"staged": "json"}

    def __init__(
        self,
        *,
        staged: Mapping[str, Any],
        categories: list[str] | None = None,
        max_rejected_share: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(multiple_outputs=True, **kwargs)
        self.staged = staged
        self.categories = categories
        self.max_rejected_share = max_rejected_share


class CurateReviewsLocalOperator(IngestStepOperator):
    """``local`` backend: classify the staged file with DuckDB and commit curated + rejected Parquet."""

    def execute(self, context: Any) -> dict[str, Any]:
        settings = load_settings()
        snapshot = run_key(context)
        uris = snapshot_uris(settings.data_root, snapshot)
        result = {"snapshot": snapshot, "format": self.staged["format"], **uris}
        try:
            outcome = ingest_with_duckdb(
                [local_path(self.staged["raw_uri"])],
                self.staged["format"],
                local_path(uris["curated_uri"]),
                local_path(uris["rejected_uri"]),
                categories=list(self.categories or []),
                max_rejected_share=self.max_rejected_share,
                latest_review_date=dt.date.fromisoformat(self.staged["latest_review_date"]),
            )
        except BadInputError as error:
            counts = {"counts": error.counts.to_dict()} if isinstance(error, RejectedShareError) else {}
            if counts:
                emit_ingest_counts(context, counts["counts"])
            update_run_summary(
                settings, snapshot, "ingest", result | {"status": "failed", "error": str(error)} | counts,
                **self.aws_connection,
            )
            raise
        emit_ingest_counts(context, outcome.counts.to_dict())
        self.report_lineage(
            [storage_dataset(self.staged["raw_uri"])], [storage_dataset(uris["curated_uri"]), storage_dataset(uris["rejected_uri"])]
        )
        return result | {"counts": outcome.counts.to_dict()}


class RunScopedAthenaOperator(AthenaOperator):
    """One ingestion statement of the run: the provider's ``AthenaOperator`` with a ``client_request_token``
    derived from the run.

    The statement's SQL (:func:`athena_sql`: the run's tables and locations, the staged file's format)
    is rendered after the templated fields, so the task's Rendered Template page shows it as ``query``.
    The token hashes DAG id, run id, task id, the rendered query and a generation number,
    so a retry reattaches to the query an earlier try started (running or finished) instead
    of running it a second time. Athena answers a known token with its execution even when
    that failed, so try ``n`` walks generations ``0 .. n-1``: a generation that ended FAILED
    or CANCELLED has its partial output discarded and the next one starts a new query. A
    query that is still running is always waited for, never run beside.

    :param statement: the ingestion statement, one of :data:`include.ingestion.athena.STATEMENTS`.
    :param staged: the XCom of the staging task. (templated)
    :param categories: keep only these product categories (all when empty). (templated)
    :param aws_conn_id: the connection of every call (Athena, S3, Glue): required, no ``aws_default``. (templated)

    Other arguments are ``AthenaOperator``'s but ``query`` (``database``, ``output_location``,
    ``workgroup`` — templated —, ``sleep_time``, ``region_name``).
    """

    template_fields: Sequence[str] = (*AthenaOperator.template_fields, "staged", "categories")
    template_fields_renderers = {**AthenaOperator.template_fields_renderers, "staged": "json"}

    def __init__(
        self, *, statement: str, staged: Mapping[str, Any], aws_conn_id: str | None, categories: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(query="", aws_conn_id=aws_conn_id, **kwargs)  # the run's SQL: render_template_fields
        self.statement = statement
        self.staged = staged
        self.categories = categories

    def render_template_fields(self, context: Any, jinja_env: jinja2.Environment | None = None) -> None:
        """Render the templated fields, then the statement's SQL for this run from them."""
        super().render_template_fields(context, jinja_env)
        self.query = athena_sql(self.statement, context["run_id"], self.staged, self.categories)

    def execute(self, context: Any) -> str | None:
        ti = context["ti"]
        generation = 0
        while True:
            self.client_request_token = request_token(ti.dag_id, ti.run_id, ti.task_id, self.query, generation)
            self.query_execution_id = None
            try:
                return super().execute(context)
            except AirflowException:
                failed_id = self.query_execution_id
                # Cached for discard_failed_output, which reads the same (then finished) execution.
                if not failed_id or self.hook.check_query_status(failed_id, use_cache=True) not in AthenaHook.FAILURE_STATES:
                    raise
                self.discard_failed_output(failed_id)
                if generation >= ti.try_number - 1:
                    raise
                self.log.warning("query %s (generation %d) failed earlier; starting generation %d", failed_id, generation, generation + 1)
                generation += 1

    def discard_failed_output(self, query_execution_id: str) -> None:
        """Remove what the failed query ``query_execution_id`` wrote (nothing for statements without output)."""

    @property
    def aws_hook_parameters(self) -> dict[str, Any]:
        """The connection arguments of another AWS hook this task uses (S3, Glue), as its Athena hook's."""
        return {"aws_conn_id": self.aws_conn_id, "region_name": self.region_name, "verify": self.verify,
                "config": self.botocore_config}


class AthenaCtasOperator(RunScopedAthenaOperator):
    """The run's CTAS of one dataset (statement ``ctas_<dataset>``), which every rerun of the task can complete.

    Athena registers a CTAS table only when the query succeeds, and table and location
    belong to this run alone (:func:`athena_object`, set with the SQL): an existing table means
    the task's work is done (also after Athena's 24 h token window), so it is kept and no query
    runs. A failed CTAS may leave files under its location, which a new CTAS refuses; they are
    deleted as listed in the failed query's data manifest, and only under ``location``.

    :param dataset: ``rejected`` or ``curated``: the table ``reviews_<dataset>_<run>`` in ``database``,
        at ``<data_root>/<dataset>/reviews/snapshot=<run key>/``.
    """

    def __init__(self, *, dataset: Literal["rejected", "curated"], **kwargs: Any) -> None:
        super().__init__(statement=f"ctas_{dataset}", **kwargs)
        self.dataset = dataset
        self.table = self.location = ""  # the run's: render_template_fields

    def render_template_fields(self, context: Any, jinja_env: jinja2.Environment | None = None) -> None:
        """Render the SQL, and the run's table and its ``external_location`` the SQL creates."""
        super().render_template_fields(context, jinja_env)
        self.table = athena_object(f"{self.dataset}_table", context["run_id"])
        self.location = athena_object(f"{self.dataset}_location", context["run_id"])

    def execute(self, context: Any) -> str | None:
        if self._table_exists():
            self.log.info("%s.%s exists: an earlier attempt of this run created it; keeping it", self.database, self.table)
            return None
        return super().execute(context)

    def discard_failed_output(self, query_execution_id: str) -> None:
        statistics = self.hook.get_query_info(query_execution_id, use_cache=True)["QueryExecution"].get("Statistics", {})
        manifest = statistics.get("DataManifestLocation")
        if not manifest:
            return
        s3 = S3Hook(**self.aws_hook_parameters)
        manifest_bucket, manifest_key = split_s3(manifest)
        if not s3.check_for_key(manifest_key, manifest_bucket):
            return
        listed = [line.strip().strip('"') for line in s3.read_key(manifest_key, manifest_bucket).splitlines()]
        bucket, _ = split_s3(self.location)
        keys = [split_s3(uri)[1] for uri in listed if uri.startswith(self.location)]
        if keys:
            self.log.warning("deleting %d files the failed query %s left under %s", len(keys), query_execution_id, self.location)
            s3.delete_objects(bucket=bucket, keys=keys)

    def _table_exists(self) -> bool:
        glue = GlueCatalogHook(**self.aws_hook_parameters)
        try:
            glue.get_table(self.database, self.table)
        except glue.get_conn().exceptions.EntityNotFoundException:
            return False
        return True


def aws_setting(name: str) -> str:
    """Jinja macro returning one AWS setting (an Airflow Variable) inside a running task."""
    return getattr(load_aws_settings(load_settings()), name)


def athena_object(name: str, run_id: str) -> str:
    """The name or location of one of the run's Athena objects (:func:`include.ingestion.athena.run_objects`)."""
    settings = load_settings()
    database = load_aws_settings(settings).athena_database
    return run_objects(database=database, data_root=settings.data_root, run_key=run_key_of(run_id))[name]


def athena_sql(statement: str, run_id: str, staged: Mapping[str, Any], categories: list[str] | None = None) -> str:
    """An ingestion statement's SQL for the run ``run_id``, inside a running task.

    :param staged: the XCom of the staging task (format, the run's newest acceptable review date).
    """
    settings = load_settings()
    return athena_statement(
        statement,
        database=load_aws_settings(settings).athena_database,
        data_root=settings.data_root,
        run_key=run_key_of(run_id),
        fmt=staged["format"],
        latest_review_date=dt.date.fromisoformat(staged["latest_review_date"]),
        categories=categories,
    )


class AthenaCommitOperator(IngestStepOperator):
    """``aws`` backend: count the run's rows by outcome, check them, then point ``reviews_curated`` at the snapshot.

    Both queries are safe to repeat (a read and a ``CREATE OR REPLACE``), so each try uses
    tokens of its own: a retry runs them again rather than meeting a failed execution.
    """

    query_execution_id: str | None = None

    def execute(self, context: Any) -> dict[str, Any]:
        settings = load_settings()
        aws = load_aws_settings(settings)
        snapshot = run_key(context)
        hook = self.athena_hook()
        categories = list(self.categories or [])
        counts_sql = athena_sql("count_reviews", context["ti"].run_id, self.staged, categories)
        rows = self._run(hook, context, counts_sql, aws, fetch=True)
        counts = IngestCounts.from_outcomes(rows)
        emit_ingest_counts(context, counts.to_dict())
        result = {"snapshot": snapshot, "format": self.staged["format"], **snapshot_uris(settings.data_root, snapshot)}
        try:
            check_counts(counts, self.staged["source_uri"], self.max_rejected_share, categories)
        except RejectedShareError as error:
            update_run_summary(
                settings, snapshot, "ingest", result | {"status": "failed", "error": str(error), "counts": counts.to_dict()},
                **self.aws_connection,
            )
            raise
        self._run(hook, context, athena_sql("point_curated_view", context["ti"].run_id, self.staged), aws)
        self.report_lineage(
            [athena_table_dataset(hook.conn_region_name, aws.athena_database, athena_object("curated_table", context["ti"].run_id))],
            [athena_table_dataset(hook.conn_region_name, aws.athena_database, "reviews_curated")],
        )
        return result | {"counts": counts.to_dict()}

    def _run(
        self, hook: AthenaHook, context: Any, query: str, aws: Any, fetch: bool = False
    ) -> list[tuple[str, str | None, int]]:
        ti = context["ti"]
        self.query_execution_id = hook.run_query(
            query=query,
            query_context={"Database": aws.athena_database},
            result_configuration={"OutputLocation": aws.athena_output_location},
            client_request_token=request_token(ti.dag_id, ti.run_id, ti.task_id, query, ti.try_number - 1),
            workgroup=aws.athena_workgroup,
        )
        state = hook.poll_query_status(self.query_execution_id)
        if state != "SUCCEEDED":
            reason = hook.get_state_change_reason(self.query_execution_id)
            raise RuntimeError(f"Athena query {self.query_execution_id} ended {state}: {reason}")
        if not fetch:
            return []
        results = hook.get_query_results(self.query_execution_id) or {}
        data = results.get("ResultSet", {}).get("Rows", [])[1:]  # first row is the header
        # Athena leaves VarCharValue out for NULL (the category of a row that is not excluded).
        return [
            (row["Data"][0]["VarCharValue"], row["Data"][1].get("VarCharValue"), int(row["Data"][2]["VarCharValue"]))
            for row in data
        ]

    def athena_hook(self) -> AthenaHook:
        return AthenaHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def on_kill(self) -> None:
        if self.query_execution_id:
            self.athena_hook().stop_query(self.query_execution_id)


class PublishCuratedReviewsOperator(AwsConnectedOperator):
    """Record the ingestion in the run summary and emit the curated-reviews asset.

    :param ingested: the XCom of the ``ingest`` task. (templated)
    :param staged: the XCom of the staging task. (templated)
    :param asset: the curated-reviews asset this task updates (also set as its outlet).
    :param aws_conn_id: the connection of the S3 writes (run summary, latest pointer). (templated)
    :param region_name: their region; ``None``: the connection's. (templated)
    """

    template_fields: Sequence[str] = (*AWS_TEMPLATE_FIELDS, "ingested", "staged")
    template_fields_renderers = {"ingested": "json", "staged": "json"}

    def __init__(self, *, ingested: Any, staged: Any, asset: Asset, **kwargs: Any) -> None:
        super().__init__(outlets=[asset], **kwargs)
        self.ingested = ingested
        self.staged = staged
        self.asset = asset

    def execute(self, context: Any) -> dict[str, Any]:
        settings = load_settings()
        section = {
            "status": "succeeded", "source_uri": self.staged["source_uri"], "raw_uri": self.staged["raw_uri"],
            "source_checksum": self.staged.get("checksum"), **self.ingested,
        }
        summary_uri = update_run_summary(settings, self.ingested["snapshot"], "ingest", section, **self.aws_connection)
        published = {
            "snapshot": self.ingested["snapshot"],
            "curated_uri": self.ingested["curated_uri"],
            "summary_uri": summary_uri,
        }
        pointer = latest_snapshot_uri(settings.data_root)
        self.storage(pointer).write_json(pointer, published)
        context["outlet_events"][self.asset].extra = published
        self.report_lineage([storage_dataset(self.ingested["curated_uri"])], [storage_dataset(pointer), storage_dataset(summary_uri)])
        counts = self.ingested["counts"]
        self.log.info(
            "curated %d rows at %s; rejected %d at %s; summary %s",
            counts["accepted"], self.ingested["curated_uri"], counts["rejected"], self.ingested["rejected_uri"], summary_uri,
        )
        return {"summary_uri": summary_uri, **self.ingested}


class ResolveCuratedSnapshotOperator(AwsConnectedOperator):
    """Decide which curated snapshot a run works on, and return its URI and id.

    In order: the ``curated_uri`` given (trigger form), the snapshot of the newest asset
    event that triggered the run (several queue up while the DAG is paused or busy; the
    others are skipped and logged), the newest published snapshot (``curated/reviews/_latest.json``).
    Each key of the result is an XCom of its own too (``output["curated_uri"]``).

    :param curated_uri: an explicit snapshot folder inside the allowed storage roots
        (``REVIEWFLOW_ALLOWED_ROOTS``); empty to choose automatically. (templated)
    :param aws_conn_id: the connection the latest-snapshot pointer is read through on S3. (templated)
    :param region_name: its region; ``None``: the connection's. (templated)
    """

    template_fields: Sequence[str] = (*AWS_TEMPLATE_FIELDS, "curated_uri")

    def __init__(self, *, curated_uri: str | None = None, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)
        self.curated_uri = curated_uri

    def execute(self, context: Any) -> dict[str, str]:
        settings = load_settings()
        chosen = (self.curated_uri or "").strip()
        how = "given"
        if chosen:
            chosen = resolve_within(chosen, settings.allowed_roots, param="curated_uri")
        else:
            events = [e for events in (context.get("triggering_asset_events") or {}).values() for e in events]
            if events:
                chosen, how = self._newest_event_snapshot(events), "newest asset event"
        if not chosen:
            pointer = latest_snapshot_uri(settings.data_root)
            storage = self.storage(pointer)
            if not storage.exists(pointer):
                raise SourceError(f"no curated snapshot yet ({pointer} is missing): run reviews_ingest first")
            chosen, how = storage.read_json(pointer)["curated_uri"], "latest published"
        chosen = chosen.rstrip("/")
        snapshot = chosen.rsplit("snapshot=", 1)[-1] if "snapshot=" in chosen else chosen.rsplit("/", 1)[-1]
        self.log.info("curated snapshot (%s): %s", how, chosen)
        self.report_lineage([storage_dataset(chosen)], [])
        return {"curated_uri": chosen, "snapshot": snapshot}

    def _newest_event_snapshot(self, events: list[Any]) -> str:
        """The ``curated_uri`` of the newest of the queued asset ``events``, by timestamp (the
        order Airflow lists them in is not the order they were published in)."""
        newest = max(events, key=lambda event: event.timestamp)
        skipped = [e for e in events if e is not newest]
        self.log.info(
            "%d curated-reviews event(s) queued; using the newest, published %s; skipped: %s",
            len(events),
            newest.timestamp.isoformat(),
            ", ".join(f"{e.extra.get('curated_uri', '?')} (published {e.timestamp.isoformat()})" for e in skipped)
            or "none",
        )
        return newest.extra.get("curated_uri", "")
