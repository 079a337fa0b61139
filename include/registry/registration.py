"""What a model version is registered with, assembled from the run summaries: the model, its test metrics,
its lineage and training parameters; and the run whose model a cached training reused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from include.registry.lineage import build_lineage
from include.registry.run_summary import summary_section


@dataclass(frozen=True)
class Registration:
    """A model version to register: the model, its test metrics, lineage and training parameters."""

    model_uri: str
    metrics: dict[str, float]
    lineage: dict[str, str]
    params: dict[str, Any] | None


def registration_metrics(training: Mapping[str, Any], evaluation: Mapping[str, Any]) -> dict[str, float]:
    """The version's metrics from the run summary's ``training`` and ``evaluation`` sections (unknown ones left out)."""
    challenger = evaluation["challenger"]
    metrics = {
        "test_macro_f1": challenger["macro_f1"],
        "test_accuracy": challenger["accuracy"],
        "validation_macro_f1": training.get("validation_macro_f1"),
        "champion_test_macro_f1": evaluation.get("champion_macro_f1"),
        "delta_test_macro_f1": evaluation.get("delta_macro_f1"),
        "test_rows": evaluation.get("test_rows"),
        **{f"test_f1_{label}": figures["f1"] for label, figures in challenger["per_class"].items()},
    }
    interval = evaluation.get("delta_macro_f1_ci95")
    if interval:
        metrics["delta_test_macro_f1_ci95_low"], metrics["delta_test_macro_f1_ci95_high"] = interval
    return {name: value for name, value in metrics.items() if value is not None}


def registration(
    *,
    summary: Mapping[str, Any],
    summary_uri: str,
    snapshot: str,
    curated_uri: str,
    metrics_file: Mapping[str, Any],
    ingest_summary: Mapping[str, Any] | None,
    ingest_summary_uri: str,
    commit: str,
    dag_id: str,
    run_id: str,
    run_key: str,
) -> Registration:
    """The registration of run ``run_key``'s model.

    :param summary: the run's summary (sections ``features``, ``training``, ``evaluation``).
    :param snapshot: the curated snapshot it was trained on (the ingest run's key); ``curated_uri`` its location.
    :param metrics_file: the training's ``metrics.json`` (its ``hyperparameters``).
    :param ingest_summary: the ingest run's summary (its quality report); ``None`` if absent.
    :raises ValueError: without a snapshot; :class:`~include.registry.run_summary.RunSummaryError` naming a missing section.
    """
    if not snapshot or not curated_uri:
        raise ValueError(f"snapshot {snapshot!r} / curated_uri {curated_uri!r}: resolve_snapshot gave none")
    training = summary_section(summary, "training", summary_uri, f"run the train task of run {run_key} first")
    evaluation = summary_section(summary, "evaluation", summary_uri, f"run the evaluate task of run {run_key} first")
    lineage = build_lineage(
        run_summary=summary,
        run_summary_uri=summary_uri,
        snapshot=snapshot,
        curated_uri=curated_uri,
        ingest_summary=ingest_summary,
        ingest_summary_uri=ingest_summary_uri,
        training_params=metrics_file.get("hyperparameters") or {},
        commit=commit,
        dag_id=dag_id,
        run_id=run_id,
        run_key=run_key,
    )
    return Registration(
        training["model_uri"], registration_metrics(training, evaluation), lineage, metrics_file.get("hyperparameters")
    )


def reused_from(summary: Mapping[str, Any], run_key: str) -> str | None:
    """The run whose model run ``run_key``'s training reused from the step cache (``None``: it trained its own).

    A cache hit copies that run's model byte for byte: registering the copy would put the same model in the
    registry twice and roll it out again.
    """
    cache = (summary.get("training") or {}).get("cache") or {}
    from_run = cache.get("from_run")
    return from_run if cache.get("status") == "hit" and from_run and from_run != run_key else None
