"""Training benchmark: dynamic vs. fixed padding throughput, and model quality vs. a TF-IDF baseline.

1. Throughput: the same rows and batches trained for ``--steps`` steps with dynamic padding
   (length-grouped batches padded to their longest row) and with fixed padding to
   ``max_seq_length``; ``speedup`` = dynamic / fixed samples per second (target ≥ 1.3).
2. Quality: train.py with its default hyperparameters (the ``make run`` training budget) on a
   balanced ``make run``-sized sample, test macro-F1 against TF-IDF + logistic regression
   trained on the same train split (``baseline_macro_f1``).

Writes ``benchmarks/results/training.json``.  Run: ``python benchmarks/training.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"


def run_train(features: Path, work: Path, args: list[str], channels: tuple[str, ...]) -> dict[str, Any]:
    """train.py in-process with the SageMaker layout under ``work``; returns its metrics."""
    from include.training.train import parse_args, train

    env = {
        "SM_MODEL_DIR": str(work / "model"),
        "SM_OUTPUT_DATA_DIR": str(work / "output"),
        "SM_CHECKPOINT_DIR": str(work / "checkpoints"),
        **{f"SM_CHANNEL_{c.upper()}": str(features / c) for c in channels},
    }
    config, paths = parse_args(args, env)
    return train(config, paths)


def tfidf_baseline(features: Path) -> dict[str, Any]:
    """TF-IDF (word 1-2-grams) + logistic regression on the train split's text, scored on test."""
    import pyarrow.parquet as pq
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline

    train = pq.read_table(features / "train", columns=["text", "label"]).to_pydict()
    test = pq.read_table(features / "test", columns=["text", "label"]).to_pydict()
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        LogisticRegression(max_iter=2000, C=10.0, class_weight="balanced"),
    )
    model.fit(train["text"], train["label"])
    predicted = model.predict(test["text"])
    return {"macro_f1": f1_score(test["label"], predicted, average="macro"), "accuracy": accuracy_score(test["label"], predicted)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    from include.features.splits import SplitPlan
    from include.training.sample_features import write_sample_features

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="generated reviews (make run's SAMPLE_ROWS)")
    parser.add_argument("--max-seq-length", type=int, default=64, help="the features stage's default")
    parser.add_argument("--steps", type=int, default=30, help="steps per padding mode in the throughput run")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)

    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        work = Path(tmp)
        features = write_sample_features(
            work / "features", args.rows, max_seq_length=args.max_seq_length, plan=SplitPlan(), balance=True
        )
        common = ["--num_threads", str(args.threads), "--max_seq_length", str(args.max_seq_length)]

        throughput = {}
        for padding in ("max_length", "dynamic"):
            subset = ["--max_steps", str(args.steps), "--max_train_samples", str(args.steps * 32), "--checkpoint_steps", "100000"]
            metrics = run_train(features, work / f"speed-{padding}", [*common, *subset, "--padding", padding], ("train",))
            throughput[padding] = metrics["training"]["samples_per_second"]

        started = time.monotonic()
        quality = run_train(features, work / "quality", common, ("train", "validation", "test"))
        wall_seconds = time.monotonic() - started
        baseline = tfidf_baseline(features)
        rows = {split: quality[split]["rows"] for split in ("validation", "test")}
        rows["train"] = quality["training"]["train_rows"]

    result = {
        "samples_per_s": throughput["dynamic"],
        "baseline_samples_per_s": throughput["max_length"],
        "speedup": throughput["dynamic"] / throughput["max_length"],
        "speedup_target": 1.3,
        "macro_f1": quality["test"]["macro_f1"],
        "accuracy": quality["test"]["accuracy"],
        "baseline_macro_f1": baseline["macro_f1"],
        "baseline_accuracy": baseline["accuracy"],
        "beats_baseline": quality["test"]["macro_f1"] > baseline["macro_f1"],
        "training_wall_seconds": round(wall_seconds, 1),
        "training_budget_seconds": 300,
        "training": quality["training"],
        "hyperparameters": quality["hyperparameters"],
        "rows": rows,
        "setup": {
            "generated_rows": args.rows,
            "max_seq_length": args.max_seq_length,
            "throughput_steps": args.steps,
            "torch_threads": args.threads,
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    summary = {k: result[k] for k in ("samples_per_s", "baseline_samples_per_s", "speedup", "macro_f1", "baseline_macro_f1", "training_wall_seconds")}
    print(json.dumps(summary, indent=2))
    return result


if __name__ == "__main__":
    main()
