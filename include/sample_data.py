"""Deterministic generator of Amazon Customer Reviews-format sample data.

Writes gzip TSV with the dataset's 15 columns, one row at a time, so 10 rows
and 5 million rows take the same memory.  Star ratings are skewed like the
real data. The text follows the rating only through how its words combine
(negated and affirmed judgements, mixed 3-star reviews; see ``FRAMES``), the
headline is drawn independently of the rating, and a small share of rows is
mislabelled: no single token gives the label away, so a bag-of-words model
stays far below a model that reads the sentences.

Run as ``python -m include.sample_data OUT.tsv.gz --rows N [--bad-rows K]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.config import REPO_ROOT, load_settings
from include.ingestion.schema import REVIEW_COLUMNS as COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

# Share of 1..5 stars in the public dataset (roughly: most 5-star, few 2-3).
STAR_WEIGHTS = (0.09, 0.05, 0.08, 0.18, 0.60)
MARKETPLACES = (("US", 0.90), ("UK", 0.04), ("DE", 0.03), ("FR", 0.02), ("JP", 0.01))
FIRST_DATE = dt.date(2010, 1, 1)
DATE_SPAN_DAYS = (dt.date(2015, 8, 31) - FIRST_DATE).days
MISLABELLED_SHARE = 0.03

CATEGORIES: dict[str, tuple[str, ...]] = {
    "Electronics": ("headphones", "charger", "bluetooth speaker", "USB cable", "webcam"),
    "Books": ("novel", "cookbook", "biography", "travel guide", "textbook"),
    "Apparel": ("jacket", "pair of jeans", "t-shirt", "rain coat", "pair of socks"),
    "Home": ("lamp", "shower curtain", "pillow", "doormat", "wall clock"),
    "Toys": ("puzzle", "building set", "doll house", "board game", "toy car"),
    "Beauty": ("face cream", "shampoo", "hair dryer", "lipstick", "nail kit"),
    "Kitchen": ("blender", "frying pan", "coffee grinder", "knife set", "kettle"),
    "Sports": ("yoga mat", "water bottle", "bike light", "tennis racket", "dumbbell set"),
}
BRANDS = ("Acme", "Northwind", "Zentrix", "Bluebird", "Oakline", "Kappa", "Veloce", "Lumo")

# Every review is two judgements of aspects of the product. A judgement's sentiment is its word's,
# flipped when its frame negates it; frames, negations and words are drawn independently of the
# sentiment, and no negation stands next to the word, so no single token (nor pair of neighbouring
# tokens) tells the label: positive = both judgements positive, negative = both negative, neutral
# (3 stars) = one of each. A model has to read how the words combine; a bag of words cannot.
ASPECTS = (
    "the {p}", "the build quality", "the price", "the battery life", "the manual",
    "the packaging", "the design", "the customer service", "the size", "the material",
)
GOOD_WORDS = ("good", "reliable", "sturdy", "comfortable", "easy to use", "worth the money", "well made", "great")
BAD_WORDS = ("bad", "unreliable", "flimsy", "uncomfortable", "hard to use", "overpriced", "poorly made", "awful")
FRAMES = (  # (affirming, negating): the word keeps the same neighbours in both
    ("I would call {a} {w}.", "I would never call {a} {w}."),
    ("I found {a} to be {w}.", "I never found {a} to be {w}."),
    ("Honestly, {a} turned out to be {w}.", "Honestly, {a} did not turn out to be {w}."),
    ("I can say that {a} is {w}.", "I cannot say that {a} is {w}."),
    ("Everyone agrees {a} is {w}.", "Nobody would claim {a} is {w}."),
    ("It is true that {a} is {w}.", "It is false that {a} is {w}."),
)
FILLERS = (
    "Bought it as a gift.",
    "Shipping took a week.",
    "I have used it for about a month now.",
    "Ordered the second one for my office.",
    "Compared it with two other brands before buying.",
)
HEADLINES = (
    "Review", "My thoughts", "After a month of use", "Honest review", "Update", "Read before buying",
    "For what it's worth", "{brand} {product}", "About this {product}", "My two cents",
)
SENTIMENTS = ("negative", "neutral", "positive")
@dataclass(frozen=True)
class SampleSpec:
    """What to generate: row count, seed and how many malformed rows to inject."""

    rows: int
    seed: int = 42
    bad_rows: int = 0


def review_id(index: int) -> str:
    """A unique, deterministic 14-character review id (``R`` + 13 base-36 chars)."""
    # Multiplying by a constant coprime with 36**13 is a bijection on [0, 36**13).
    value = (index * 1_000_000_007 + 12_345) % 36**13
    digits = []
    for _ in range(13):
        value, digit = divmod(value, 36)
        digits.append("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[digit])
    return "R" + "".join(reversed(digits))


def _sentiment(star: int) -> str:
    return "negative" if star <= 2 else "neutral" if star == 3 else "positive"


def _judgement(rng: random.Random, positive: bool, product: str) -> str:
    negated = rng.random() < 0.5
    words = GOOD_WORDS if positive != negated else BAD_WORDS
    aspect = rng.choice(ASPECTS).format(p=product)
    sentence = rng.choice(FRAMES)[negated].format(a=aspect, w=rng.choice(words))
    return sentence[0].upper() + sentence[1:]


def _text(rng: random.Random, sentiment: str, product: str) -> str:
    verdicts = {"positive": [True, True], "negative": [False, False], "neutral": [True, False]}[sentiment]
    rng.shuffle(verdicts)
    sentences = [_judgement(rng, verdict, product) for verdict in verdicts]
    if rng.random() < 0.5:
        # A sentiment-free sentence so length varies realistically.
        sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(FILLERS))
    body = " ".join(sentences)
    if rng.random() < 0.05:
        body = body.replace(". ", ".<br /><br />", 1)
    if rng.random() < 0.03:
        body = body.replace(product, f"&#34;{product}&#34;", 1)
    return body


def _choose_marketplace(rng: random.Random) -> str:
    roll = rng.random()
    for code, share in MARKETPLACES:
        if roll < share:
            return code
        roll -= share
    return MARKETPLACES[0][0]


def generate_rows(spec: SampleSpec) -> Iterator[tuple[str, ...]]:
    """Yield well-formed rows as tuples of strings in ``COLUMNS`` order."""
    rng = random.Random(spec.seed)
    categories = list(CATEGORIES)
    stars = (1, 2, 3, 4, 5)
    for index in range(spec.rows):
        category = rng.choice(categories)
        product_index = rng.randrange(max(1, spec.rows // 20 + 1))
        product_noun = CATEGORIES[category][product_index % len(CATEGORIES[category])]
        brand = BRANDS[product_index % len(BRANDS)]
        star = rng.choices(stars, weights=STAR_WEIGHTS)[0]
        text_sentiment = _sentiment(star)
        if rng.random() < MISLABELLED_SHARE:
            text_sentiment = rng.choice([s for s in SENTIMENTS if s != text_sentiment])
        total_votes = int(rng.expovariate(0.4)) if rng.random() < 0.6 else 0
        helpful_votes = rng.randint(0, total_votes) if total_votes else 0
        date = FIRST_DATE + dt.timedelta(days=rng.randrange(DATE_SPAN_DAYS + 1))
        yield (
            _choose_marketplace(rng),
            str(10_000_000 + rng.randrange(40_000_000)),
            review_id(index),
            f"B{product_index:09d}",
            str(100_000_000 + product_index * 7919 % 900_000_000),
            f"{brand} {product_noun.title()} {product_index % 97}",
            category,
            str(star),
            str(helpful_votes),
            str(total_votes),
            "Y" if rng.random() < 0.01 else "N",
            "Y" if rng.random() < 0.8 else "N",
            rng.choice(HEADLINES).format(brand=brand, product=product_noun),
            _text(rng, text_sentiment, product_noun),
            date.isoformat(),
        )


# Malformed variants, one per reason the ingestion quarantines a row.
BAD_ROW_KINDS: tuple[str, ...] = (
    "column_count",
    "star_rating",
    "empty_review_id",
    "empty_body",
    "review_date",
    "invalid_utf8",
    "votes",
)


def _corrupt(row: tuple[str, ...], kind: str) -> bytes:
    fields = list(row)
    position = {name: i for i, name in enumerate(COLUMNS)}
    if kind == "column_count":
        fields = fields[:-2]
    elif kind == "star_rating":
        fields[position["star_rating"]] = "6"
    elif kind == "empty_review_id":
        fields[position["review_id"]] = ""
    elif kind == "empty_body":
        fields[position["review_body"]] = ""
    elif kind == "review_date":
        fields[position["review_date"]] = "2015-13-45"
    elif kind == "votes":
        fields[position["helpful_votes"]] = "9"
        fields[position["total_votes"]] = "3"
    line = "\t".join(fields).encode("utf-8")
    if kind == "invalid_utf8":
        line = line.replace(b"\t", b"\t\xff\xfe", 1)
    return line + b"\n"


def write_sample(path: Path, spec: SampleSpec) -> dict[str, int]:
    """Write ``spec`` as gzip TSV (with header) to ``path`` atomically.

    Bad rows replace evenly spaced good rows, cycling through ``BAD_ROW_KINDS``.
    Returns the number of rows written per kind (``good`` plus each bad kind).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    bad_every = spec.rows // spec.bad_rows if spec.bad_rows else 0
    counts = {"good": 0} | {kind: 0 for kind in BAD_ROW_KINDS}
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wb", compresslevel=5) as out:
        out.write(("\t".join(COLUMNS) + "\n").encode())
        bad_written = 0
        for index, row in enumerate(generate_rows(spec)):
            if bad_every and index % bad_every == bad_every // 2 and bad_written < spec.bad_rows:
                kind = BAD_ROW_KINDS[bad_written % len(BAD_ROW_KINDS)]
                out.write(_corrupt(row, kind))
                counts[kind] += 1
                bad_written += 1
            else:
                out.write(("\t".join(row) + "\n").encode("utf-8"))
                counts["good"] += 1
    tmp.replace(path)
    return counts


CURATED_INT_COLUMNS = ("star_rating", "helpful_votes", "total_votes")


def curated_records(rows: Iterable[tuple[str, ...]]) -> list[dict[str, Any]]:
    """Generated rows typed as a curated snapshot holds them (int32 counts, ``review_date`` a date)."""
    records = []
    for row in rows:
        record: dict[str, Any] = dict(zip(COLUMNS, row, strict=True))
        for name in CURATED_INT_COLUMNS:
            record[name] = int(record[name])
        record["review_date"] = dt.date.fromisoformat(record["review_date"])
        records.append(record)
    return records


def curated_table(records: list[dict[str, Any]]) -> pa.Table:
    """Typed ``records`` as an Arrow table with the curated snapshot's column types."""
    import pyarrow as pa

    types = {name: pa.int32() if name in CURATED_INT_COLUMNS else pa.string() for name in COLUMNS}
    types["review_date"] = pa.date32()
    return pa.table({name: pa.array([r[name] for r in records], types[name]) for name in COLUMNS})


def write_curated_snapshot(folder: Path, records: list[dict[str, Any]]) -> str:
    """Write typed ``records`` as ``folder/product_category=<c>/*.parquet``, the ingestion's layout.

    For tests and benchmarks that need a curated snapshot (also one the ingestion would have
    rejected) without running the ingestion; ``folder`` is replaced. Returns its path.
    """
    import pyarrow.dataset as ds

    ds.write_dataset(
        curated_table(records),
        folder,
        format="parquet",
        partitioning=["product_category"],
        partitioning_flavor="hive",
        existing_data_behavior="delete_matching",
    )
    return str(folder)


def sample_uri(data_root: str) -> str:
    """``<data root>/samples/amazon_reviews_sample.tsv.gz``: ``reviews_ingest``'s default source."""
    return f"{data_root.rstrip('/')}/samples/amazon_reviews_sample.tsv.gz"


def local_sample_path() -> Path:
    """The file ``make`` generates the sample into: the data root's sample (so the ingest DAG's default
    source exists), or with an ``s3://`` data root the copy under the repository's ``.data/``."""
    data_root = load_settings().data_root
    if data_root.startswith("s3://"):
        data_root = str(REPO_ROOT / ".data")
    return Path(sample_uri(data_root).removeprefix("file://"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="where to write the .tsv.gz file")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bad-rows", type=int, default=0, help="malformed rows to inject")
    args = parser.parse_args(argv)
    counts = write_sample(args.output, SampleSpec(args.rows, args.seed, args.bad_rows))
    print(f"wrote {sum(counts.values())} rows to {args.output}: {counts}")


if __name__ == "__main__":
    main()
