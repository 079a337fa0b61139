"""The Amazon Customer Reviews source schema and checks of a source before ingestion."""

from __future__ import annotations

import datetime as dt
import re
import zlib
from typing import Literal

from include.errors import BadInputError

REVIEW_COLUMNS: tuple[str, ...] = (
    "marketplace",
    "customer_id",
    "review_id",
    "product_id",
    "product_parent",
    "product_title",
    "product_category",
    "star_rating",
    "helpful_votes",
    "total_votes",
    "vine",
    "verified_purchase",
    "review_headline",
    "review_body",
    "review_date",
)

SourceFormat = Literal["tsv", "parquet"]

# The Parquet source schema: the public Amazon Customer Reviews Parquet, which the Athena raw table
# declares (include/sql/athena/create_raw_table_parquet.sql). Athena reads an unpartitioned Parquet
# table only with exactly these types, so the local engine accepts no others either. Extra columns
# are ignored.
PARQUET_TYPES: dict[str, str] = dict.fromkeys(REVIEW_COLUMNS, "string") | {
    "star_rating": "int32",
    "helpful_votes": "int32",
    "total_votes": "int32",
    "review_date": "date32[day]",
}
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# The oldest review date accepted; the quality suite's "review_date is a valid date" check has the
# same lower bound (include/quality/reviews_suite.yaml). The newest is the run's date.
EARLIEST_REVIEW_DATE = dt.date(1995, 1, 1)

# A product category as a param may name it (JSON-schema pattern of the trigger forms): letters,
# digits, spaces and _ & . - inside, e.g. "Home Improvement", "Digital_Ebook_Purchase"; no quotes,
# commas or semicolons, so a category can never be read as SQL or split as a list.
CATEGORY_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9 _&.-]*[A-Za-z0-9.])?$"
CATEGORY_MAX_LENGTH = 64


class SourceError(BadInputError):
    """The ingestion source is missing, empty or not in the Amazon Customer Reviews schema."""


def source_format(uri: str) -> SourceFormat:
    """``tsv`` for ``.tsv``/``.tsv.gz`` files, ``parquet`` for ``.parquet``; anything else is an error."""
    name = uri.rstrip("/").rsplit("/", 1)[-1].lower()
    if name.endswith((".tsv", ".tsv.gz")):
        return "tsv"
    if name.endswith(".parquet"):
        return "parquet"
    raise SourceError(f"{uri}: unsupported file type; expected .tsv, .tsv.gz or .parquet")


def staged_name(uri: str) -> str:
    """The name a source is staged under: its file name with the extension in lower case (engines pick
    the decompression by it) and every character but letters, digits, ``.``, ``_`` and ``-`` replaced
    by ``_`` (DuckDB reads ``*?[]`` in a path as a glob)."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    extension = next(e for e in (".tsv.gz", ".tsv", ".parquet") if name.lower().endswith(e))
    return re.sub(r"[^A-Za-z0-9._-]", "_", name[: -len(extension)]) + extension


def first_line(uri: str, head: bytes) -> bytes:
    """The first line of a TSV file given its first bytes (gzip-compressed or not), without a UTF-8
    byte-order mark; lines end in LF, CRLF or CR."""
    compressed = head[:2] == GZIP_MAGIC
    if compressed and not uri.lower().endswith(".gz"):
        raise SourceError(f"{uri}: gzip-compressed but not named .gz; name it .tsv.gz")
    if uri.lower().endswith(".gz") and not compressed:
        raise SourceError(f"{uri}: named .gz but not gzip-compressed")
    if compressed:
        try:
            head = zlib.decompressobj(wbits=31).decompress(head)
        except zlib.error as error:
            raise SourceError(f"{uri}: not a readable gzip file ({error})") from error
        if not head:
            raise SourceError(f"{uri}: no header line: the file holds no data after decompression")
    if head.startswith(PARQUET_MAGIC):
        raise SourceError(f"{uri}: a Parquet file named .tsv; name it .parquet")
    if head.startswith(UTF16_BOMS):
        raise SourceError(f"{uri}: UTF-16 encoded (it starts with a UTF-16 byte-order mark); save it as UTF-8")
    return re.split(rb"\r\n|\r|\n", head.removeprefix(UTF8_BOM), maxsplit=1)[0]


def check_tsv_header(uri: str, head: bytes) -> None:
    """Raise :class:`SourceError` unless ``head`` (the file's first bytes) starts with the 15-column header."""
    if not head:
        raise SourceError(f"{uri}: file is empty")
    line = first_line(uri, head)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SourceError(f"{uri}: row 1 (header): invalid UTF-8 at byte {error.start}") from error
    names = tuple(text.split("\t"))
    if names != REVIEW_COLUMNS:
        missing = [c for c in REVIEW_COLUMNS if c not in names]
        unexpected = [c for c in names if c not in REVIEW_COLUMNS]
        separated = next(
            (f"; it looks {kind}-separated: reviewflow reads tab-separated files"
             for separator, kind in ((",", "comma"), (";", "semicolon"), ("|", "pipe"))
             if "\t" not in text and text.count(separator) >= len(REVIEW_COLUMNS) - 1),
            "",
        )
        raise SourceError(
            f"{uri}: row 1 (header) is not the Amazon Customer Reviews schema: "
            f"expected {len(REVIEW_COLUMNS)} tab-separated columns {', '.join(REVIEW_COLUMNS)}; "
            f"missing {missing or 'none'}, unexpected {unexpected or 'none'}{separated}"
        )


def parquet_footer_size(uri: str, head: bytes, tail: bytes) -> int:
    """How many bytes at the end of a Parquet file hold its footer (metadata, length, magic), given the
    file's first and last 8 bytes; raises :class:`SourceError` when it is no complete Parquet file."""
    if not head.startswith(PARQUET_MAGIC):
        kind = "gzip-compressed data" if head.startswith(GZIP_MAGIC) else "no Parquet data (a TSV named .parquet?)"
        raise SourceError(f"{uri}: not a Parquet file: it does not start with PAR1; it holds {kind}")
    if not tail.endswith(PARQUET_MAGIC):
        raise SourceError(f"{uri}: an incomplete Parquet file: it does not end with PAR1 (truncated?)")
    return int.from_bytes(tail[-8:-4], "little") + 8


def check_parquet_schema(uri: str, footer: bytes) -> None:
    """Raise :class:`SourceError` unless the Parquet file whose last bytes are ``footer`` (at least
    :func:`parquet_footer_size` of them) has every source column with its type in :data:`PARQUET_TYPES`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(pa.BufferReader(PARQUET_MAGIC + footer))
    except (pa.ArrowException, OSError) as error:
        raise SourceError(f"{uri}: unreadable Parquet footer ({error})") from error
    missing = [c for c in REVIEW_COLUMNS if c not in schema.names]
    if missing:
        raise SourceError(f"{uri}: Parquet schema lacks column(s) {', '.join(missing)}")
    found = {name: str(schema.field(name).type).replace("large_string", "string") for name in PARQUET_TYPES}
    wrong = [f"{name} is {found[name]}, expected {expected}" for name, expected in PARQUET_TYPES.items() if found[name] != expected]
    if wrong:
        raise SourceError(
            f"{uri}: Parquet column types differ from the Amazon Customer Reviews schema: {'; '.join(wrong)} "
            "(cast them before ingesting)"
        )
