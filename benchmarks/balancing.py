"""Balancing benchmark: downsampling to the smallest class vs class weights, on real reviews.

The question the features stage's ``balance`` default answers: with a skewed training set, is it
better to throw away rows of the large classes (``downsample``) or to keep every row and weight the
loss by inverse class frequency (``none`` + class weights, as train.py does with ``--class_weights
auto``)? Measured on the IMDB reviews (``make real-data``) as they are (balanced) and on skewed
subsets of a user's first-file size (``--rows`` reviews, a share ``--skews`` of them positive), each
split 70/30 into train and test by a seeded shuffle; test keeps the skewed mix, as in the pipeline.
Each cell is the mean test macro-F1 over ``--repeats`` seeds of TF-IDF + logistic regression (the
same model as the training benchmark's baseline), trained both ways on the same rows.

Writes ``benchmarks/results/balancing.json``. Run: ``python benchmarks/balancing.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.training import IMDB, RESULTS, read_imdb  # noqa: E402


def macro_f1(train: list[tuple[str, int]], test: list[tuple[str, int]], strategy: str, seed: int) -> float:
    """TF-IDF + LR trained with ``strategy`` (``downsample`` or ``class_weights``); test macro-F1."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline

    if strategy == "downsample":
        by_label: dict[int, list[tuple[str, int]]] = {}
        for row in train:
            by_label.setdefault(row[1], []).append(row)
        smallest = min(len(rows) for rows in by_label.values())
        train = [row for rows in by_label.values() for row in random.Random(seed).sample(rows, smallest)]
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        LogisticRegression(max_iter=2000, C=10.0, class_weight="balanced" if strategy == "class_weights" else None),
    )
    model.fit([text for text, _ in train], [label for _, label in train])
    return float(f1_score([label for _, label in test], model.predict([text for text, _ in test]), average="macro"))


def subset(reviews: list[tuple[str, int]], rows: int, positive_share: float, seed: int) -> list[tuple[str, int]]:
    """``rows`` reviews of which ``positive_share`` are positive, drawn with ``seed``."""
    rng = random.Random(seed)
    positive = [r for r in reviews if r[1] == 2]
    negative = [r for r in reviews if r[1] == 0]
    n_positive = round(rows * positive_share)
    chosen = rng.sample(positive, n_positive) + rng.sample(negative, rows - n_positive)
    rng.shuffle(chosen)
    return chosen


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from include.features.text import review_text, star_to_label
    from include.ingestion.schema import REVIEW_COLUMNS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=IMDB)
    parser.add_argument("--rows", type=int, default=1000, help="reviews per skewed subset")
    parser.add_argument("--skews", default="0.5,0.67,0.9", help="positive shares of the subsets")
    parser.add_argument("--real-rows", type=int, default=10_000, help="reviews of the (balanced) real-set run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS / "balancing.json")
    args = parser.parse_args(argv)
    started = time.monotonic()
    column = {name: i for i, name in enumerate(REVIEW_COLUMNS)}
    reviews = [
        (review_text(r[column["review_headline"]], r[column["review_body"]]), star_to_label(int(r[column["star_rating"]])))
        for r in read_imdb(args.data)
    ]
    cells = [("real", args.real_rows, 0.5)] + [(f"skewed {float(share):g}", args.rows, float(share)) for share in args.skews.split(",")]
    results = []
    for name, rows, share in cells:
        scores: dict[str, list[float]] = {"downsample": [], "class_weights": []}
        for seed in range(args.repeats):
            data = subset(reviews, rows, share, seed)
            cut = int(0.7 * len(data))
            for strategy, values in scores.items():
                values.append(macro_f1(data[:cut], data[cut:], strategy, seed))
        cell = {
            "data": name, "rows": rows, "positive_share": share,
            **{f"{strategy}_macro_f1": round(statistics.mean(values), 4) for strategy, values in scores.items()},
            **{f"{strategy}_macro_f1_sd": round(statistics.stdev(values), 4) for strategy, values in scores.items()},
        }
        results.append(cell)
        print(json.dumps(cell), flush=True)
    payload = {
        "model": "TF-IDF (1-2-grams) + logistic regression; test keeps the subset's class mix",
        "split": "seeded shuffle, 70 % train / 30 % test",
        "repeats": args.repeats,
        "results": results,
        "seconds": round(time.monotonic() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    return payload


if __name__ == "__main__":
    main()
