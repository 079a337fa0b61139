"""Training benchmark: model quality on real reviews (IMDB) against TF-IDF, and padding throughput.

1. Quality on real reviews: a fixed, seeded subset of the IMDB reviews that ``make real-data``
   converts (``--train-rows`` train, ``--validation-rows`` validation for early stopping and the best
   checkpoint, ``--test-rows`` test), the same rows for both models. The fine-tuned encoder
   (train.py) against TF-IDF + logistic regression fitted on the same train rows: accuracy and
   macro-F1 on the test rows, and a paired bootstrap 95 % interval of the macro-F1 difference.
   ``beats_baseline`` only when that interval lies above 0.
2. The generated sample (``make run``'s data, its default training budget): both models again,
   to show the sample no longer gives its labels away (``sample.gap``: fine-tuned − TF-IDF).
3. Throughput: the same rows and batches trained for ``--steps`` steps with dynamic padding
   (length-grouped batches padded to their longest row) and with fixed padding to
   ``max_seq_length`` on the sample; ``speedup`` = dynamic / fixed samples per second.

``--learning-curve 1000,2000,4000,8000`` instead trains both models on nested train subsets of those
sizes (same validation and test rows) and writes ``benchmarks/results/learning_curve.json``.

Writes ``benchmarks/results/training.json``.  Run: ``python benchmarks/training.py`` (after ``make real-data``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
IMDB = ROOT / ".data" / "real" / "imdb_reviews.tsv.gz"


def run_train(features: Path, work: Path, args: list[str], channels: tuple[str, ...]) -> dict[str, Any]:
    """train.py in-process with the SageMaker layout under ``work``; returns its metrics."""
    from include.training.sourcedir.finetune.config import parse_args
    from include.training.sourcedir.finetune.loop import train

    env = {
        "SM_MODEL_DIR": str(work / "model"),
        "SM_OUTPUT_DATA_DIR": str(work / "output"),
        "SM_CHECKPOINT_DIR": str(work / "checkpoints"),
        **{f"SM_CHANNEL_{c.upper()}": str(features / c) for c in channels},
    }
    config, paths = parse_args(args, env)
    return train(config, paths)


def tfidf_baseline(features: Path) -> dict[str, Any]:
    """TF-IDF (word 1-2-grams) + logistic regression on the train split's text; test metrics and predictions."""
    import pyarrow.parquet as pq
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from include.features.text import LABEL_NAMES
    from include.training.sourcedir.finetune.metrics import classification_metrics

    train = pq.read_table(features / "train", columns=["text", "label"]).to_pydict()
    test = pq.read_table(features / "test", columns=["text", "label"]).to_pydict()
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        LogisticRegression(max_iter=2000, C=10.0, class_weight="balanced"),
    )
    model.fit(train["text"], train["label"])
    predicted = [int(p) for p in model.predict(test["text"])]
    present = sorted(set(train["label"]) | set(test["label"]))
    return {**classification_metrics(test["label"], predicted, LABEL_NAMES, present), "predictions": predicted, "present": present}


def compare_on_test(work: Path, features: Path) -> dict[str, Any]:
    """The saved fine-tuned model and TF-IDF on the same test rows: both models' figures and the paired bootstrap interval.

    train.py runs without the test channel, so the test rows are predicted once, here, by the saved model.
    """
    from include.features.text import LABEL_NAMES
    from include.training.evaluate import paired_bootstrap
    from include.training.sourcedir.finetune.data import read_split
    from include.training.sourcedir.finetune.metrics import classification_metrics, predict
    from include.training.sourcedir.finetune.model import load_classifier

    model = load_classifier(work / "model")
    split = read_split(features / "test", len(LABEL_NAMES))
    predictions = predict(model, split, 64, model.encoder.config.pad_token_id or 0).argmax(-1).tolist()
    baseline = tfidf_baseline(features)
    fine_tuned = classification_metrics(split.labels, predictions, LABEL_NAMES, baseline["present"])
    interval = paired_bootstrap(split.labels, predictions, baseline["predictions"], baseline["present"])
    return {
        "macro_f1": fine_tuned["macro_f1"],
        "accuracy": fine_tuned["accuracy"],
        "baseline_macro_f1": baseline["macro_f1"],
        "baseline_accuracy": baseline["accuracy"],
        "macro_f1_diff": interval["diff"],
        "macro_f1_diff_ci95_low": interval["ci95_low"],
        "macro_f1_diff_ci95_high": interval["ci95_high"],
        "test_rows": len(split.labels),
    }


def read_imdb(path: Path) -> list[tuple[str, ...]]:
    """The converted IMDB reviews (``make real-data``) as source rows."""
    if not path.is_file():
        sys.exit(f"{path} is missing: run `make real-data` first")
    csv.field_size_limit(1 << 24)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        return [tuple(row) for row in reader]


def imdb_features(root: Path, records: list[tuple[str, ...]], sizes: dict[str, int], seed: int, max_seq_length: int, truncation: str) -> Path:
    """Features of a seeded subset: the first ``sizes['train']`` reviews of a seeded shuffle train, then validation, then test."""
    from include.training.sample_features import write_features

    order = random.Random(seed).sample(range(len(records)), sum(sizes.values()))
    chosen, splits = [], []
    for split in ("test", "validation", "train"):  # test first: it stays the same when train grows
        chosen.extend(records[i] for i in order[len(chosen) : len(chosen) + sizes[split]])
        splits.extend([split] * sizes[split])
    return write_features(root, chosen, splits, max_seq_length, balance=False, truncation=truncation)  # type: ignore[arg-type]


def train_arguments(args: argparse.Namespace) -> list[str]:
    return [
        "--num_threads", str(args.threads), "--max_seq_length", str(args.max_seq_length), "--truncation", args.truncation,
        "--pooling", args.pooling, "--epochs", str(args.epochs), "--learning_rate", str(args.learning_rate),
        "--train_batch_size", str(args.batch_size), "--eval_steps", str(args.eval_steps), "--class_weights", "",
        "--checkpoint_steps", "100000", "--early_stopping_patience", "0",
    ]


def imdb_run(work: Path, records: list[tuple[str, ...]], args: argparse.Namespace, train_rows: int) -> dict[str, Any]:
    sizes = {"train": train_rows, "validation": args.validation_rows, "test": args.test_rows}
    features = imdb_features(work / "features", records, sizes, args.seed, args.max_seq_length, args.truncation)
    if args.baseline_only:
        baseline = tfidf_baseline(features)
        return {"rows": sizes, "baseline_macro_f1": baseline["macro_f1"], "baseline_accuracy": baseline["accuracy"]}
    started = time.monotonic()
    fine_tuned = run_train(features, work / "model-run", train_arguments(args), ("train", "validation"))
    wall = time.monotonic() - started
    result = compare_on_test(work / "model-run", features)
    result.update(training_wall_seconds=round(wall, 1), training=fine_tuned["training"], hyperparameters=fine_tuned["hyperparameters"])
    result["rows"] = {"train": train_rows, "validation": args.validation_rows, "test": args.test_rows}
    return result


def sample_run(work: Path, args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """The generated sample with make run's features defaults and train.py's defaults."""
    from include.features.splits import SplitPlan
    from include.training.sample_features import write_sample_features

    features = write_sample_features(work / "sample-features", args.sample_rows, plan=SplitPlan(), balance=True)
    arguments = ["--num_threads", str(args.threads), "--max_seq_length", "64"]
    run_train(features, work / "sample-model", arguments, ("train", "validation"))
    result = compare_on_test(work / "sample-model", features)
    result["gap"] = result["macro_f1"] - result["baseline_macro_f1"]
    return result, features


def throughput(work: Path, features: Path, args: argparse.Namespace) -> dict[str, float]:
    speeds = {}
    for padding in ("max_length", "dynamic"):
        subset = ["--max_steps", str(args.steps), "--max_train_samples", str(args.steps * 32), "--checkpoint_steps", "100000"]
        common = ["--num_threads", str(args.threads), "--max_seq_length", "64"]
        metrics = run_train(features, work / f"speed-{padding}", [*common, *subset, "--padding", padding], ("train",))
        speeds[padding] = metrics["training"]["samples_per_second"]
    return speeds


def setup(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "seed": args.seed,
        "torch_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=IMDB, help="the converted IMDB reviews (make real-data)")
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--validation-rows", type=int, default=300)
    parser.add_argument("--test-rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42, help="picks the IMDB subset and seeds training")
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--truncation", choices=("head", "head_tail"), default="head_tail")
    parser.add_argument("--pooling", choices=("mean", "cls"), default="mean")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-steps", type=int, default=0, help="0: evaluate validation once per epoch")
    parser.add_argument("--sample-rows", type=int, default=20_000, help="generated reviews (make run's SAMPLE_ROWS)")
    parser.add_argument("--steps", type=int, default=30, help="steps per padding mode in the throughput run")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--learning-curve", help="comma-separated train sizes: run only the learning curve")
    parser.add_argument("--imdb-only", action="store_true", help="skip the sample and throughput parts (experiments)")
    parser.add_argument("--sample-only", action="store_true", help="only the sample and throughput parts")
    parser.add_argument("--baseline-only", action="store_true", help="with --learning-curve: TF-IDF only (seconds, not hours)")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/training.json (learning_curve.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    records = read_imdb(args.data)
    started = time.monotonic()

    def write(result: dict[str, Any], output: Path) -> None:
        result["benchmark_wall_seconds"] = round(time.monotonic() - started, 1)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")

    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        work = Path(tmp)
        if args.learning_curve:
            output = args.output or RESULTS / ("learning_curve_baseline.json" if args.baseline_only else "learning_curve.json")
            result = {"dataset": "imdb", "points": [], "setup": setup(args)}
            for size in (int(part) for part in args.learning_curve.split(",")):
                point = imdb_run(work / f"curve-{size}", records, args, size)
                keys = ("rows", "macro_f1", "baseline_macro_f1", "accuracy", "baseline_accuracy", "macro_f1_diff_ci95_low",
                        "macro_f1_diff_ci95_high", "training_wall_seconds")
                result["points"].append({k: point[k] for k in keys if k in point})
                result["hyperparameters"] = point.get("hyperparameters")
                write(result, output)  # after every point: a long curve keeps what it measured
        else:
            output = args.output or RESULTS / "training.json"
            result = {"dataset": "imdb", "training_budget_seconds": 2400, "setup": setup(args)}
            if not args.sample_only:
                imdb = imdb_run(work / "imdb", records, args, args.train_rows)
                result.update(imdb, beats_baseline=imdb["macro_f1_diff_ci95_low"] > 0)
                write(result, output)
            if not args.imdb_only:
                sample, sample_features = sample_run(work, args)
                result["sample"] = {k: sample[k] for k in ("macro_f1", "baseline_macro_f1", "gap", "macro_f1_diff_ci95_low", "macro_f1_diff_ci95_high", "test_rows")}
                write(result, output)
                speeds = throughput(work, sample_features, args)
                result.update(
                    samples_per_s=speeds["dynamic"], baseline_samples_per_s=speeds["max_length"],
                    speedup=speeds["dynamic"] / speeds["max_length"], speedup_target=1.3,
                )
                write(result, output)
    shown = ("macro_f1", "baseline_macro_f1", "macro_f1_diff_ci95_low", "macro_f1_diff_ci95_high", "beats_baseline", "sample", "speedup", "benchmark_wall_seconds")
    print(json.dumps({k: result[k] for k in shown if k in result}, indent=2))
    return result


if __name__ == "__main__":
    main()
