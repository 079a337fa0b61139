"""Step caching through dag.test(): an identical second run reuses every cached step's committed output;
a changed parameter and ``force`` compute again (include/caching.py; a changed snapshot, a changed code file and a
killed step: tests/plugins/test_step_cache.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from include.registry.base import CHAMPION
from include.registry.mlflow_registry import MlflowModelRegistry
from include.sample_data import SampleSpec, write_sample
from include.training.sample_features import write_tiny_classifier
from reviewflow.runs import run_key_of
from scripts.model_lineage import chain_lines
from tests.dags.helpers import TINY_TRAINING, lineage_graph, reachable, run_summary, task_states

SMALL_INGEST = {"min_rows": 500}


def cache_of(data_root: Path, dag_run: Any, section: str) -> dict[str, Any]:
    return run_summary(data_root, dag_run)[section]["cache"]


def test_identical_runs_hit_and_changes_miss(dag_bag, data_root: Path, tmp_path: Path, lineage_log: Path) -> None:
    source = tmp_path / "reviews.tsv.gz"
    write_sample(source, SampleSpec(rows=1_500, seed=21, bad_rows=5))
    ingest, train = dag_bag.dags["reviews_ingest"], dag_bag.dags["reviews_train"]

    # The same file ingested twice: two snapshots with one content fingerprint; the gate's report is reused.
    first = ingest.test(run_conf={"source_uri": str(source)} | SMALL_INGEST)
    second = ingest.test(run_conf={"source_uri": str(source)} | SMALL_INGEST)
    assert first.state == second.state == "success"
    manifests = [
        json.loads((data_root / "curated" / "reviews" / f"snapshot={run_key_of(run.run_id)}" / "_manifest.json").read_text())
        for run in (first, second)
    ]
    assert manifests[0]["fingerprint"] == manifests[1]["fingerprint"] and manifests[0]["rows"] > 1_000
    assert cache_of(data_root, first, "quality")["status"] == "miss"
    hit = cache_of(data_root, second, "quality")
    assert (hit["status"], hit["from_run"]) == ("hit", run_key_of(first.run_id))
    assert run_summary(data_root, second)["quality"]["gate"] == "passed"
    quality_dir = data_root / "reports" / run_key_of(second.run_id) / "quality"
    assert (quality_dir / "report.html").exists() and (quality_dir / "_cache-quality.json").exists()

    # force from the trigger form runs the gate again.
    forced = ingest.test(run_conf={"source_uri": str(source), "force": True} | SMALL_INGEST)
    assert cache_of(data_root, forced, "quality")["status"] == "miss"
    assert cache_of(data_root, forced, "quality")["reason"].startswith("force")

    # A fixed champion, so an identical training run meets the same evaluation inputs.
    registry = MlflowModelRegistry.for_data_root(data_root)
    champion_dir = write_tiny_classifier(data_root / "models" / "champion-run" / "model", seed=3, max_seq_length=32)
    registry.register_version("champion-run", str(champion_dir), {"test_macro_f1": 0.3}, {})
    registry.set_alias(CHAMPION, "1")
    # The tiny models cannot rule out a drop against it: the gate's tolerance is lifted so every run succeeds.
    snapshot = {"max_f1_drop": 1.0, "curated_uri": str(data_root / "curated" / "reviews" / f"snapshot={run_key_of(second.run_id)}")}

    computed = train.test(run_conf=TINY_TRAINING | snapshot)
    reused = train.test(run_conf=TINY_TRAINING | snapshot)
    retrained = train.test(run_conf=TINY_TRAINING | snapshot | {"learning_rate": 5e-4})
    for run in (computed, reused, retrained):
        assert run.state == "success", task_states(run)
    steps = ("features", "training", "evaluation")
    assert {step: cache_of(data_root, computed, step)["status"] for step in steps} == dict.fromkeys(steps, "miss")
    origin = run_key_of(computed.run_id)
    assert {step: (cache_of(data_root, reused, step)["status"], cache_of(data_root, reused, step)["from_run"]) for step in steps} == (
        dict.fromkeys(steps, ("hit", origin))
    )
    reused_summary, computed_summary = run_summary(data_root, reused), run_summary(data_root, computed)
    model = Path(reused_summary["training"]["model_uri"])
    assert run_key_of(reused.run_id) in str(model) and (model / "model.safetensors").exists()
    assert reused_summary["evaluation"]["challenger_macro_f1"] == computed_summary["evaluation"]["challenger_macro_f1"]
    assert reused_summary["features"]["rows"] == computed_summary["features"]["rows"]
    assert [cache_of(data_root, retrained, step)["status"] for step in steps] == ["hit", "miss", "miss"]

    # The reused model is the computed run's: registered once, its approval not asked or recorded again
    # (no second approved-model event), while the retrained model is a version of its own.
    assert reused_summary["registry"]["version"] == computed_summary["registry"]["version"]
    assert "is the model of run " + origin in reused_summary["registry"]["gate"]["reason"]
    states = task_states(reused)
    assert (states["approval_gate"], states["human_approval"], states["record_approval"]) == ("success", "skipped", "skipped")
    assert [v.run_key for v in registry.list_versions()] == ["champion-run", origin, run_key_of(retrained.run_id)]

    # The OpenLineage events (the provider's file transport) chain the source file to every model version.
    graph = lineage_graph(lineage_log, tmp_path)
    downstream = reachable(graph, ("file", str(source)))
    raw = ("file", str(data_root / "raw" / "reviews" / f"run={run_key_of(second.run_id)}" / source.name))
    curated = ("file", snapshot["curated_uri"])
    assert {raw, curated, ("file", str(quality_dir / "report.json"))} <= downstream
    for run in (computed, reused, retrained):
        summary = run_summary(data_root, run)
        assert {
            ("file", summary["features"]["features_uri"]),
            ("file", summary["training"]["model_uri"]),
            ("file", summary["evaluation"]["evaluation_uri"]),
            ("mlflow", f"{summary['registry']['name']}/versions/{summary['registry']['version']}"),
        } <= downstream, run.run_id

    # make lineage names every link behind the retrained model, and which step reused another run's output.
    printed = "\n".join(chain_lines(run_summary(data_root, retrained)["registry"]["version"]))
    for link in ("source file", "snapshot", "quality", "features", "training", "evaluation", "model version", "approval", "rollout"):
        assert f"  {link} " in printed, link
    ingest_summary = run_summary(data_root, second)["ingest"]
    assert ingest_summary["source_checksum"].startswith("sha256:") and ingest_summary["source_checksum"] in printed
    assert f"{ingest_summary['counts']['accepted']} accepted" in printed and "passed" in printed
    assert printed.count(f"cache hit: computed by run {origin}") == 1  # the features
    assert "learning_rate" in printed and "by reviewflow-gate at 20" in printed
