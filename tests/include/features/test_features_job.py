"""The feature job end to end on local Spark: layout, determinism, leakage, balance, tokens, scaler, store."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from include.features.job import FeatureError, FeatureParams, build_features
from include.features.splits import SPLITS, split_of
from include.features.tokenizer import load_tokenizer
from include.sample_data import (
    COLUMNS,
    SampleSpec,
    curated_records,
    curated_table,
    generate_rows,
    write_curated_snapshot,
)
from tests.conftest import kill_when, parquet_digest, spark_submit_env
from tests.reliability import ReliabilityRecord

ROWS = 1000
EXTREME_VOTES = 10_000


def _row(review: str, category: str, stars: int, votes: int, body: str) -> tuple[str, ...]:
    values = {
        "marketplace": "US", "customer_id": "1", "review_id": review, "product_id": "B1", "product_parent": "1",
        "product_title": "Lamp", "product_category": category, "star_rating": str(stars),
        "helpful_votes": str(votes), "total_votes": str(votes), "vine": "N", "verified_purchase": "Y",
        "review_headline": "Headline", "review_body": body, "review_date": "2014-05-06",
    }  # fmt: skip
    return tuple(values[name] for name in COLUMNS)


def _first_id_in(split: str, prefix: str) -> str:
    return next(f"{prefix}{n}" for n in range(10_000) if split_of(f"{prefix}{n}") == split)


@dataclass
class Runs:
    root: Path
    snapshot: str
    outlier_id: str
    first: dict[str, Any]
    first_ids: dict[str, bytes]
    rerun: dict[str, Any]
    unbalanced: dict[str, Any]

    def out(self, run: str) -> Path:
        return self.root / "features" / run

    def table(self, run: str, split: str) -> Any:
        return pq.read_table(self.out(run) / split)


def _ids(folder: Path) -> dict[str, bytes]:
    return {s: "\n".join(sorted(pq.read_table(folder / s, columns=["review_id"])["review_id"].to_pylist())).encode() for s in SPLITS}


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("features-job")
    outlier = _first_id_in("test", "ROUTLIER")
    extra = [
        _row(outlier, "Books", 5, EXTREME_VOTES, "Fine book."),
        *[_row(_first_id_in("train", f"RLONG{i}-"), "Books", 1, 0, "Terrible &#34;book&#34;. " * 40) for i in range(3)],
    ]
    snapshot = write_curated_snapshot(root / "curated" / "snapshot=s1", curated_records([*generate_rows(SampleSpec(rows=ROWS, seed=11)), *extra]))
    store = str(root / "feature_store" / "reviews")

    def run(run_key: str, **overrides: Any) -> dict[str, Any]:
        params = FeatureParams(
            snapshot_uri=snapshot, output_uri=str(root / "features" / run_key), run_key=run_key,
            feature_store_uri=store, **overrides,
        )  # fmt: skip
        return build_features(spark, params)

    first = run("r1")
    first_ids = _ids(root / "features" / "r1")
    rerun = run("r1")
    unbalanced = run("r-none", balance="none", max_seq_length=24, truncation="head")
    return Runs(root, snapshot, outlier, first, first_ids, rerun, unbalanced)


def test_output_layout_and_schema_follow_the_contract(runs: Runs) -> None:
    folder = runs.out("r1")
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith((".", "_"))) == sorted(
        [*SPLITS, "manifest.json", "scaler.json"]
    )
    schema = runs.table("r1", "train").schema
    expected = {
        "review_id": "string", "product_category": "string", "label": "int32", "text": "string",
        "input_ids": "list<element: int32>", "attention_mask": "list<element: int8>", "token_count": "int32",
        "helpful_votes_scaled": "double", "total_votes_scaled": "double", "review_length_scaled": "double",
    }  # fmt: skip
    assert {f.name: str(f.type) for f in schema} == expected
    for split in SPLITS:
        assert list((folder / split).glob("part-*.parquet"))
    assert not [p for p in (runs.root / "features").iterdir() if p.name not in ("r1", "r-none")], "staging left behind"


def test_manifest_counts_match_the_files(runs: Runs) -> None:
    manifest = json.loads((runs.out("r1") / "manifest.json").read_text())
    assert manifest == runs.rerun
    assert manifest["label_names"] == ["negative", "neutral", "positive"]
    assert manifest["max_seq_length"] == 64
    assert manifest["tokenizer"]["name"] and len(manifest["tokenizer"]["vocab_sha256"]) == 64
    assert json.loads((runs.out("r1") / "scaler.json").read_text()) == manifest["scaler"]
    for split in SPLITS:
        labels = runs.table("r1", split)["label"].to_pylist()
        counts = manifest["splits"][split]
        assert counts["rows"] == len(labels)
        assert counts["per_class"] == {str(c): labels.count(c) for c in range(3)}
    assert manifest["input_rows"] == ROWS + 4


def test_rerun_gives_byte_identical_split_ids(runs: Runs) -> None:
    assert _ids(runs.out("r1")) == runs.first_ids
    for split, ids in runs.first_ids.items():
        # the hash split, except train rows the evaluation floor moved into validation or test
        assert all(split_of(i) in (split, "train" if split in ("validation", "test") else split) for i in ids.decode().split("\n") if i)


def test_no_review_is_in_two_splits(runs: Runs) -> None:
    for run in ("r1", "r-none"):
        seen: dict[str, str] = {}
        for split in SPLITS:
            for review in runs.table(run, split)["review_id"].to_pylist():
                assert review not in seen, f"{review} in {seen.get(review)} and {split}"
                seen[review] = split


def test_downsampling_balances_train_only(runs: Runs) -> None:
    splits = runs.first["splits"]
    train = splits["train"]["per_class"]
    assert len(set(train.values())) == 1 and train["0"] > 0
    assert runs.first["class_weights"] == {"0": 1.0, "1": 1.0, "2": 1.0}
    for split in ("validation", "test", "replay"):  # the data's (positive-heavy) mix, as users send it
        assert splits[split]["per_class"]["2"] > 2 * splits[split]["per_class"]["1"]
        assert splits[split] == runs.unbalanced["splits"][split]


def test_the_evaluation_floor_is_taken_before_balancing(runs: Runs) -> None:
    splits = runs.unbalanced["splits"]
    moved = runs.first["eval_floor"]["moved_from_train"]
    assert runs.first["eval_floor"] | {"moved_from_train": None} == {
        "min_rows_per_class": 30, "max_share_per_class": 0.2, "moved_from_train": None, "applied": "before balancing",
    }
    assert moved["test"]["neutral"] > 0, "the hash split leaves the small neutral class short of the floor"
    for c, name in enumerate(("negative", "neutral", "positive")):
        rows = sum(splits[s]["per_class"][str(c)] for s in ("train", "validation", "test"))
        for split in ("validation", "test"):
            assert splits[split]["per_class"][str(c)] >= min(30, int(0.2 * rows))
    hashed = {s: sum(split_of(r) == s for r in runs.table("r-none", s)["review_id"].to_pylist()) for s in ("validation", "test")}
    assert {s: splits[s]["rows"] - hashed[s] for s in hashed} == {s: sum(moved[s].values()) for s in hashed}


def test_a_data_set_without_neutral_reviews_is_handled(spark, tmp_path: Path) -> None:
    star = COLUMNS.index("star_rating")
    rows = [r for r in generate_rows(SampleSpec(rows=600, seed=4)) if r[star] != "3"]
    snapshot = write_curated_snapshot(tmp_path / "snapshot=two", curated_records(rows))
    manifest = build_features(spark, FeatureParams(snapshot, str(tmp_path / "out"), "two"))
    assert manifest["absent_labels"] == ["neutral"] and manifest["present_labels"] == ["negative", "positive"]
    train = manifest["splits"]["train"]["per_class"]
    assert train["1"] == 0 and train["0"] == train["2"] > 0
    assert manifest["class_weights"] == {"0": 1.0, "1": 0.0, "2": 1.0}
    assert manifest["eval_floor"]["moved_from_train"]["test"].keys() <= {"negative", "positive"}


def test_no_balance_keeps_all_rows_and_records_class_weights(runs: Runs) -> None:
    manifest = runs.unbalanced
    assert sum(s["rows"] for s in manifest["splits"].values()) == ROWS + 4
    train = manifest["splits"]["train"]["per_class"]
    total = sum(train.values())
    assert manifest["class_weights"] == {c: round(total / (3 * n), 6) for c, n in train.items()}
    assert manifest["class_weights"]["1"] > 1 > manifest["class_weights"]["2"]


def test_tokens_equal_the_tokenizers_own_output(runs: Runs) -> None:
    tokenizer = load_tokenizer()
    for run, max_length in (("r1", 64), ("r-none", 24)):
        rows = runs.table(run, "train").to_pylist()
        for row in rows[:200] + [r for r in rows if r["review_id"].startswith("RLONG")]:
            whole = tokenizer(row["text"])["input_ids"]
            if run == "r-none":  # head: as the tokenizer's own truncation cuts
                assert row["input_ids"] == tokenizer(row["text"], truncation=True, max_length=max_length)["input_ids"]
            elif len(whole) > max_length:  # head_tail: [CLS], the first 16 ids, the last 46, [SEP]
                assert row["input_ids"] == whole[:17] + whole[-47:]
            else:
                assert row["input_ids"] == whole
            assert row["attention_mask"] == [1] * len(row["input_ids"])
            assert row["token_count"] == len(whole)
    counts = [c for s in SPLITS for c in runs.table("r-none", s)["token_count"].to_pylist()]
    assert runs.unbalanced["truncation_rate"] == round(sum(c > 24 for c in counts) / len(counts), 6)
    assert 0 < runs.first["truncated_rows"] < runs.unbalanced["truncated_rows"]


def test_text_is_unescaped_and_normalised(runs: Runs) -> None:
    texts = [t for s in SPLITS for t in runs.table("r-none", s)["text"].to_pylist()]
    assert not [t for t in texts if "<br" in t or "&#34;" in t or "  " in t]
    assert any('"' in t for t in texts)


def test_scaler_is_fitted_on_train_rows_only(runs: Runs) -> None:
    snapshot = ds.dataset(runs.snapshot, partitioning="hive").to_table().to_pandas().set_index("review_id")
    for run, manifest in (("r1", runs.first), ("r-none", runs.unbalanced)):
        train_ids = runs.table(run, "train")["review_id"].to_pylist()
        scaler = manifest["scaler"]["features"]
        assert manifest["scaler"]["fitted_rows"] == len(train_ids)
        for name in ("helpful_votes", "total_votes"):
            assert scaler[name]["max"] == snapshot.loc[train_ids, name].max() < EXTREME_VOTES
    test_rows = runs.table("r-none", "test").to_pandas().set_index("review_id")
    assert test_rows.loc[runs.outlier_id, "helpful_votes_scaled"] > 1.0


def test_feature_store_has_no_duplicates_after_reruns(runs: Runs) -> None:
    store = ds.dataset(runs.root / "feature_store" / "reviews", partitioning="hive").to_table().to_pandas()
    assert not store.duplicated(["review_id", "event_time"]).any()
    assert len(store) == ROWS + 4
    assert set(store["run_key"]) == {"r-none"}, "the latest run's rows replace earlier ones"
    assert runs.unbalanced["feature_store"]["key"] == ["review_id", "event_time"]


@pytest.mark.parametrize(
    ("categories", "message"),
    [((), "empty selection"), (("Nope",), "no rows for category Nope; available: Apparel, Beauty")],
)
def test_bad_category_selection_fails_clearly(spark, runs: Runs, categories: tuple[str, ...], message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        build_features(spark, FeatureParams(runs.snapshot, str(runs.root / "x"), "x", categories=categories))


def test_empty_snapshot_fails_clearly(spark, tmp_path: Path) -> None:
    empty_dir = tmp_path / "snapshot=empty"
    empty_dir.mkdir()
    with pytest.raises(FeatureError, match="no readable Parquet files"):
        build_features(spark, FeatureParams(str(empty_dir), str(tmp_path / "out"), "x"))
    no_rows = tmp_path / "snapshot=norows"
    (no_rows / "product_category=Books").mkdir(parents=True)
    pq.write_table(curated_table([]).drop_columns(["product_category"]), no_rows / "product_category=Books" / "p.parquet")
    with pytest.raises(FeatureError, match="snapshot=norows has no rows"):
        build_features(spark, FeatureParams(str(no_rows), str(tmp_path / "out"), "x"))


def test_bad_star_rating_names_the_row(spark, tmp_path: Path) -> None:
    rows = [*generate_rows(SampleSpec(rows=50, seed=3)), _row("RBAD1", "Books", 7, 0, "x")]
    snapshot = write_curated_snapshot(tmp_path / "snapshot=bad", curated_records(rows))
    with pytest.raises(FeatureError, match="review_id='RBAD1' star_rating=7"):
        build_features(spark, FeatureParams(snapshot, str(tmp_path / "out"), "x"))


def test_a_selection_too_small_to_split_fails_and_leaves_no_output(spark, runs: Runs) -> None:
    out = runs.root / "features" / "tiny"
    snapshot = write_curated_snapshot(runs.root / "curated" / "snapshot=tiny", curated_records(list(generate_rows(SampleSpec(rows=12, seed=5)))))
    with pytest.raises(FeatureError, match="split has no .* reviews even after the evaluation floor"):
        build_features(spark, FeatureParams(snapshot, str(out), "tiny"))
    assert not out.exists()


@pytest.mark.reliability
def test_a_kill_while_the_splits_are_written_leaves_no_features_and_the_retry_equals_a_clean_run(
    spark, runs: Runs, reliability: ReliabilityRecord
) -> None:
    reliability.section, reliability.case = "Kills", "features: kill -9 while the Spark job writes the splits"
    reliability.path = "python -m include.features.job (the spark-submit script; its JVM in the same process group)"
    reliability.tried = "SIGKILL the job's process group once a split's first Parquet part is in its staging folder"
    features = runs.root / "features"
    output, store = features / "r-killed", runs.root / "feature_store-killed" / "reviews"
    command = [sys.executable, "-m", "include.features.job", "--snapshot-uri", runs.snapshot, "--output-uri", str(output),
               "--feature-store-uri", str(store)]
    env = spark_submit_env()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # The driver and its JVM together, as when a worker is lost.
    code = kill_when(process, lambda: bool(list(features.glob("_staging-r-killed-*/*/part-*.parquet"))))
    assert code == -signal.SIGKILL  # killed mid-write, not finished
    assert not output.exists()  # the train task finds no manifest, so no features (it fails naming the manifest)
    assert list(features.glob("_staging-r-killed-*"))

    retried = build_features(spark, FeatureParams(snapshot_uri=runs.snapshot, output_uri=str(output), run_key="r-killed",
                                                  feature_store_uri=str(store)))
    assert retried["splits"] == runs.first["splits"]
    for split in SPLITS:
        assert parquet_digest(output / split) == parquet_digest(runs.out("r1") / split), split
    assert not list(features.glob("_staging-r-killed-*")), "the killed try's staging left behind"
    reliability.outcome = (
        f"the killed job exited by SIGKILL with no features folder (no manifest) visible; the retry committed "
        f"{sum(c['rows'] for c in retried['splits'].values())} rows in 4 splits, the same Parquet contents as an "
        "uninterrupted run, and removed the killed try's staging folder"
    )
