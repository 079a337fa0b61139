"""Labels, text, splits, downsampling, tokenizer and scaler as plain functions (and their Spark twins)."""

from __future__ import annotations

import pandas as pd
import pytest

from include.features.scaling import MinMaxScaler
from include.features.splits import BUCKETS, SplitPlan, bucket_of, downsample, split_column, split_of
from include.features.text import clean_text, review_text, star_to_label
from include.features.tokenizer import (
    bundled_model_dir,
    load_tokenizer,
    tokenize_arrays,
    tokenize_batch,
    tokenizer_info,
)
from include.sample_data import review_id


@pytest.mark.parametrize(("stars", "label"), [(1, 0), (2, 0), (3, 1), (4, 2), (5, 2)])
def test_star_to_label(stars: int, label: int) -> None:
    assert star_to_label(stars) == label


@pytest.mark.parametrize("stars", [0, 6, None])
def test_star_to_label_rejects_out_of_range(stars: object) -> None:
    with pytest.raises(ValueError, match="star_rating must be 1..5"):
        star_to_label(stars)  # type: ignore[arg-type]


def test_spark_label_column_matches_python(spark) -> None:
    from include.features.job import label_column

    frame = spark.createDataFrame([(s,) for s in range(1, 6)], "star_rating int")
    got = {row["star_rating"]: row["label"] for row in frame.select("star_rating", label_column().alias("label")).collect()}
    assert got == {s: star_to_label(s) for s in range(1, 6)}


def test_clean_text_unescapes_entities_and_breaks() -> None:
    raw = "Love the &#34;lamp&#34;.<br /><br />Works  well &amp; fast.<BR>\tReally"
    assert clean_text(raw) == 'Love the "lamp". Works well & fast. Really'
    assert clean_text(None) == ""


def test_review_text_joins_headline_and_body() -> None:
    assert review_text("Five Stars", "Works.<br />Great") == "Five Stars. Works. Great"
    assert review_text("Great!", "Love it") == "Great! Love it"
    assert review_text("", "Only body") == "Only body"
    assert review_text("Only headline", None) == "Only headline"


def test_split_plan_bounds_and_shares() -> None:
    bounds = SplitPlan().bounds()
    assert bounds == {"replay": 500, "train": 9050, "validation": 9525, "test": BUCKETS}
    with pytest.raises(ValueError, match="test"):
        SplitPlan(train=0.95, validation=0.05)


def test_split_of_is_stable_and_roughly_proportional() -> None:
    ids = [review_id(i) for i in range(20_000)]
    splits = [split_of(i) for i in ids]
    assert splits == [split_of(i) for i in ids]
    shares = pd.Series(splits).value_counts(normalize=True)
    assert shares["replay"] == pytest.approx(0.05, abs=0.01)
    assert shares["train"] == pytest.approx(0.95 * 0.90, abs=0.015)
    assert shares["validation"] == pytest.approx(0.95 * 0.05, abs=0.01)
    assert shares["test"] == pytest.approx(0.95 * 0.05, abs=0.01)


def test_spark_split_column_matches_python(spark) -> None:
    from pyspark.sql import functions as F

    ids = [review_id(i) for i in range(500)] + ["R1", "", "RÄÖ"]
    frame = spark.createDataFrame([(i,) for i in ids], "review_id string").repartition(3)
    got = {r["review_id"]: r["split"] for r in frame.select("review_id", split_column(F.col("review_id")).alias("split")).collect()}
    assert got == {i: split_of(i) for i in ids}
    assert all(0 <= bucket_of(i) < BUCKETS for i in ids)


def test_downsample_balances_deterministically(spark) -> None:
    rows = [(review_id(i), 2 if i % 10 < 7 else i % 2) for i in range(600)]
    frame = spark.createDataFrame(rows, "review_id string, label int")
    smallest = min(pd.Series([label for _, label in rows]).value_counts())
    first = downsample(frame, "label", "review_id", seed=1)
    counts = {r["label"]: r["count"] for r in first.groupBy("label").count().collect()}
    assert counts == {0: smallest, 1: smallest, 2: smallest}
    again = downsample(frame.repartition(5), "label", "review_id", seed=1)
    assert sorted(r[0] for r in first.collect()) == sorted(r[0] for r in again.collect())
    other_seed = downsample(frame, "label", "review_id", seed=2)
    assert sorted(r[0] for r in first.collect()) != sorted(r[0] for r in other_seed.collect())


def test_bundled_model_dir_has_the_tokenizer_and_weights() -> None:
    folder = bundled_model_dir()
    assert (folder / "tokenizer.json").is_file() and (folder / "model.safetensors").is_file()
    info = tokenizer_info()
    assert len(info["vocab_sha256"]) == 64 and info["vocab_size"] == 30522


def test_tokenize_batch_equals_the_tokenizers_own_truncation() -> None:
    tokenizer = load_tokenizer()
    texts = ["Great lamp. Works.", "", "word " * 100, "Not bad at all, the charger exceeded what I expected."]
    batch = tokenize_batch(texts, max_seq_length=16)
    for text, ids, count in zip(texts, batch.input_ids, batch.token_counts, strict=True):
        assert ids == tokenizer(text, truncation=True, max_length=16)["input_ids"]
        assert count == len(tokenizer(text)["input_ids"])
    assert batch.token_counts[2] == 102 and len(batch.input_ids[2]) == 16
    with pytest.raises(ValueError, match="max_seq_length"):
        tokenize_batch(texts, max_seq_length=1)


def test_tokenize_arrays_gives_typed_arrow_columns() -> None:
    texts = ["Great lamp. Works.", "word " * 100, ""]
    arrays = tokenize_arrays(texts, max_seq_length=16)
    assert (str(arrays.input_ids.type), str(arrays.attention_mask.type), str(arrays.token_counts.type)) == (
        "list<item: int32>", "list<item: int8>", "int32",
    )  # fmt: skip
    assert arrays.input_ids.to_pylist() == tokenize_batch(texts, max_seq_length=16).input_ids
    assert arrays.attention_mask.to_pylist() == [[1] * len(ids) for ids in arrays.input_ids.to_pylist()]
    assert arrays.token_counts.to_pylist() == [7, 102, 2]
    empty = tokenize_arrays([], max_seq_length=16)
    assert len(empty.input_ids) == len(empty.attention_mask) == len(empty.token_counts) == 0


def test_tokenize_batches_keeps_rows_and_scales_with_nulls() -> None:
    import datetime as dt

    import pyarrow as pa

    from include.features.job import tokenize_batches

    batch = pa.record_batch(
        {
            "review_id": ["R1", "R2"], "product_category": ["Books", "Toys"],
            "label": pa.array([2, 0], pa.int32()), "split": ["train", "test"], "text": ["Great book.", "word " * 30],
            "helpful_votes": pa.array([4, None], pa.int32()), "total_votes": pa.array([8, 2], pa.int32()),
            "review_length": pa.array([11, 150], pa.int32()),
            "review_date": pa.array([dt.date(2015, 1, 2), dt.date(2015, 3, 4)], pa.date32()),
        }
    )  # fmt: skip
    scaler = MinMaxScaler(
        minimum={"helpful_votes": 0.0, "total_votes": 0.0, "review_length": 0.0},
        maximum={"helpful_votes": 8.0, "total_votes": 8.0, "review_length": 150.0},
        fitted_rows=2,
    )
    (out,) = list(tokenize_batches(iter([batch]), max_seq_length=8, scaler=scaler))
    assert out.column("review_id").to_pylist() == ["R1", "R2"] and out.column("review_date") == batch.column("review_date")
    assert out.column("token_count").to_pylist() == [5, 32]
    assert [len(ids) for ids in out.column("input_ids").to_pylist()] == [5, 8]
    assert out.column("helpful_votes_scaled").to_pylist() == [0.5, None]
    assert out.column("total_votes_scaled").to_pylist() == [1.0, 0.25]


def test_min_max_scaler_fit_transform_roundtrip(spark) -> None:
    frame = spark.createDataFrame([(0, 2, 10), (4, 4, 30), (2, 4, 20)], "helpful_votes int, total_votes int, review_length int")
    scaler = MinMaxScaler.fit(frame)
    assert scaler.minimum == {"helpful_votes": 0.0, "total_votes": 2.0, "review_length": 10.0}
    batch = pd.DataFrame({"helpful_votes": [2, 8], "total_votes": [3, 4], "review_length": [20, 10]})
    scaled = scaler.transform(batch)
    assert scaled["helpful_votes_scaled"].tolist() == [0.5, 2.0]
    assert scaled["total_votes_scaled"].tolist() == [0.5, 1.0]
    assert MinMaxScaler.from_json(scaler.to_json()) == scaler
    with pytest.raises(ValueError, match="train split has no rows"):
        MinMaxScaler.fit(frame.limit(0))


def test_head_tail_keeps_the_start_and_the_end_of_a_long_text() -> None:
    text = " ".join(f"word{i}" for i in range(200))
    whole = load_tokenizer()(text)["input_ids"]
    # 18 ids: [CLS], a quarter of the 16-id budget from the start, the rest from the end, [SEP]
    assert tokenize_batch([text], max_seq_length=18, truncation="head_tail").input_ids == [whole[:5] + whole[-13:]]
    assert tokenize_batch(["short text"], max_seq_length=18, truncation="head_tail").input_ids == [load_tokenizer()("short text")["input_ids"]]
    with pytest.raises(ValueError, match="truncation must be one of head, head_tail"):
        tokenize_batch([text], max_seq_length=18, truncation="tail")  # type: ignore[arg-type]
