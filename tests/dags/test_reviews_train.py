"""reviews_ingest then reviews_train end to end through dag.test() on the local backend."""

from __future__ import annotations

import json
from pathlib import Path

from include.sample_data import SampleSpec, write_sample


def test_ingest_then_train_builds_features_trains_and_evaluates(dag_bag, data_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "reviews.tsv.gz"
    write_sample(source, SampleSpec(rows=2_500, seed=21, bad_rows=10))
    ingest_run = dag_bag.dags["reviews_ingest"].test(run_conf={"source_uri": str(source)})
    assert ingest_run.state == "success"
    published = json.loads((data_root / "curated" / "reviews" / "_latest.json").read_text())

    train_run = dag_bag.dags["reviews_train"].test(
        run_conf={"epochs": 1, "max_train_samples": 96, "max_seq_length": 32}
    )

    states = {ti.task_id: ti.state for ti in train_run.get_task_instances()}
    assert train_run.state == "success", states
    summary_path = next(p for p in (data_root / "reports").glob("*/summary.json") if "features" in json.loads(p.read_text()))
    summary = json.loads(summary_path.read_text())
    assert summary["features"]["rows"]["train"] > 0
    features = Path(summary["features"]["features_uri"])
    manifest = json.loads((features / "manifest.json").read_text())
    assert manifest["max_seq_length"] == 32
    resolved = next(ti for ti in train_run.get_task_instances() if ti.task_id == "resolve_snapshot")
    assert resolved.xcom_pull(task_ids="resolve_snapshot")["curated_uri"] == published["curated_uri"]
    model = Path(summary["training"]["model_uri"])
    assert (model / "model.safetensors").exists() and (model.parent / "metrics.json").exists()
    evaluation = summary["evaluation"]
    assert 0.0 <= evaluation["challenger_macro_f1"] <= 1.0
    assert evaluation["champion"] is None  # first model: nothing to compare with yet
    assert Path(evaluation["evaluation_uri"]).exists()
