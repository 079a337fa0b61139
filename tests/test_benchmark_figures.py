"""The benchmark figures README.md and docs/ quote are the committed results files' figures.

Each entry names a document, a results file under ``benchmarks/results/``, a dotted key path
into it and the decimals the document prints; the document must contain the value so rounded
(negative values with the typographic minus the docs use). A re-measured benchmark whose new
figures are not copied into the docs fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

QUOTED: list[tuple[str, str, str, int]] = [
    ("README.md", "training.json", "macro_f1", 3),
    ("README.md", "training.json", "baseline_macro_f1", 3),
    ("README.md", "training.json", "macro_f1_diff_ci95_low", 3),
    ("README.md", "training.json", "macro_f1_diff_ci95_high", 3),
    ("README.md", "training.json", "sample.macro_f1", 3),
    ("README.md", "training.json", "sample.baseline_macro_f1", 3),
    ("README.md", "caching.json", "second_run_ratio", 3),
    ("README.md", "learning_curve.json", "points.2.macro_f1", 3),
    ("README.md", "learning_curve.json", "points.2.baseline_macro_f1", 3),
    ("README.md", "learning_curve.json", "points.2.macro_f1_diff_ci95_low", 4),
    ("README.md", "learning_curve.json", "points.2.macro_f1_diff_ci95_high", 3),
    ("docs/benchmarks.md", "ingest.json", "runs.1.speedup", 2),
    ("docs/benchmarks.md", "ingest.json", "runs.1.ours_vs_floor", 2),
    ("docs/benchmarks.md", "ingest.json", "runs.0.ours_vs_floor", 2),
    ("docs/benchmarks.md", "ingest.json", "runs.1.seconds", 2),
    ("docs/benchmarks.md", "ingest.json", "runs.1.floor_seconds", 2),
    ("docs/benchmarks.md", "ingest.json", "runs.1.baseline_seconds", 2),
    ("docs/benchmarks.md", "quality.json", "speedup", 2),
    ("docs/benchmarks.md", "quality.json", "median_speedup", 2),
    ("docs/benchmarks.md", "features.json", "speedup", 2),
    ("docs/benchmarks.md", "features.json", "legacy_speedup", 2),
    ("docs/benchmarks.md", "training.json", "macro_f1", 4),
    ("docs/benchmarks.md", "training.json", "baseline_macro_f1", 4),
    ("docs/benchmarks.md", "training.json", "macro_f1_diff", 4),
    ("docs/benchmarks.md", "training.json", "macro_f1_diff_ci95_low", 4),
    ("docs/benchmarks.md", "training.json", "macro_f1_diff_ci95_high", 4),
    ("docs/benchmarks.md", "training.json", "sample.macro_f1", 4),
    ("docs/benchmarks.md", "training.json", "sample.baseline_macro_f1", 4),
    ("docs/benchmarks.md", "training.json", "speedup", 2),
    ("docs/benchmarks.md", "bandit.json", "results.default.regret_ratio", 3),
    ("docs/benchmarks.md", "endpoint.json", "dynamic_batching_speedup", 2),
    ("docs/benchmarks.md", "endpoint.json", "int8_speedup", 2),
    ("docs/benchmarks.md", "endpoint.json", "int8_macro_f1_drop", 4),
    ("docs/benchmarks.md", "caching.json", "second_run_ratio", 3),
    ("docs/model-quality.md", "training.json", "macro_f1", 4),
    ("docs/model-quality.md", "training.json", "baseline_macro_f1", 4),
    ("docs/model-quality.md", "training.json", "macro_f1_diff_ci95_low", 4),
    ("docs/model-quality.md", "training.json", "macro_f1_diff_ci95_high", 4),
    ("docs/model-quality.md", "training.json", "sample.gap", 4),
    *(
        ("docs/model-quality.md", "learning_curve_baseline.json", f"points.{i}.baseline_macro_f1", 4)
        for i in range(4)
    ),
    *(
        ("docs/model-quality.md", "learning_curve.json", f"points.{i}.{key}", 4)
        for i in range(3)
        for key in ("macro_f1", "macro_f1_diff_ci95_low", "macro_f1_diff_ci95_high")
    ),
    *(
        (document, f"experiments/{run}.json", key, 4)
        for run, documents in (
            ("mean_head_tail_512_2epochs_4k", ("docs/model-quality.md", "docs/benchmarks.md")),
            ("mean_head_tail_512_2epochs_lr1e-4_4k", ("docs/model-quality.md", "docs/benchmarks.md")),
            ("mean_head_tail_512_2epochs_lr1.5e-4_4k", ("docs/model-quality.md",)),
        )
        for document in documents
        for key in ("macro_f1", "macro_f1_diff", "macro_f1_diff_ci95_low", "macro_f1_diff_ci95_high")
    ),
    *(
        ("docs/model-quality.md", "balancing.json", f"results.{i}.{key}", 4)
        for i in range(4)
        for key in ("downsample_macro_f1", "class_weights_macro_f1")
    ),
]


def value_at(document: Any, path: str) -> Any:
    for key in path.split("."):
        document = document[int(key)] if isinstance(document, list) else document[key]
    return document


def as_printed(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}".replace("-", "−")


@pytest.mark.parametrize(("document", "results", "path", "decimals"), QUOTED, ids=str)
def test_the_docs_quote_the_committed_figure(document: str, results: str, path: str, decimals: int) -> None:
    value = value_at(json.loads((RESULTS / results).read_text()), path)
    figure = as_printed(value, decimals)
    assert figure in (ROOT / document).read_text(), f"{document} does not quote {results} {path} = {value} as {figure}"
