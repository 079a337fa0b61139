"""The Amazon Customer Reviews source schema and checks of a source before ingestion."""

from __future__ import annotations

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


def first_line(uri: str, head: bytes) -> bytes:
    """The first line of a file given its first bytes (gzip-compressed or not)."""
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(wbits=31).decompress(head)
        except zlib.error as error:
            raise SourceError(f"{uri}: not a readable gzip file ({error})") from error
    elif uri.lower().endswith(".gz"):
        raise SourceError(f"{uri}: named .gz but not gzip-compressed")
    return head.split(b"\n", 1)[0].rstrip(b"\r")


def check_tsv_header(uri: str, head: bytes) -> None:
    """Raise :class:`SourceError` unless ``head`` (the file's first bytes) starts with the 15-column header."""
    if not head:
        raise SourceError(f"{uri}: file is empty")
    line = first_line(uri, head)
    try:
        names = tuple(line.decode("utf-8").split("\t"))
    except UnicodeDecodeError as error:
        raise SourceError(f"{uri}: row 1 (header): invalid UTF-8 at byte {error.start}") from error
    if names != REVIEW_COLUMNS:
        missing = [c for c in REVIEW_COLUMNS if c not in names]
        unexpected = [c for c in names if c not in REVIEW_COLUMNS]
        raise SourceError(
            f"{uri}: row 1 (header) is not the Amazon Customer Reviews schema: "
            f"expected {len(REVIEW_COLUMNS)} tab-separated columns {', '.join(REVIEW_COLUMNS)}; "
            f"missing {missing or 'none'}, unexpected {unexpected or 'none'}"
        )


def check_parquet_columns(uri: str, columns: list[str]) -> None:
    """Raise :class:`SourceError` unless a Parquet source has every source column."""
    missing = [c for c in REVIEW_COLUMNS if c not in columns]
    if missing:
        raise SourceError(f"{uri}: Parquet schema lacks column(s) {', '.join(missing)}")

