"""Pre-training bias metrics of the label per facet, as SageMaker Clarify defines them.

For a facet value ``d`` (e.g. ``product_category = Books``) against all other rows ``a``:

* class imbalance ``CI = (n_a - n_d) / (n_a + n_d)`` in [-1, 1]: how under-represented
  ``d`` is (``n`` = rows with a label);
* difference in proportions of labels ``DPL = q_a - q_d`` in [-1, 1] for each label,
  where ``q = rows with that label / rows``: how much more often ``a`` gets the label.

The label is derived from an integer column (star_rating 1–2 → negative, 3 → neutral,
4–5 → positive in the default suite); rows whose facet is null or whose value maps to no
label are left out and counted as ``excluded``. Results are reported at the suite's bias
level (Warning): one ``ClassImbalance`` and one ``DifferenceInProportionsOfLabels`` row per
facet, the latter for the label with the largest ``|DPL|``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.quality.results import CheckResult
from include.quality.suite import BiasSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def label_counts(df: DataFrame, spec: BiasSpec) -> tuple[dict[str, dict[str, int]], int]:
    """Rows per facet and label (one Spark aggregation), and the number of excluded rows."""
    from pyspark.sql import functions as F

    (first, *rest) = spec.labels.items()
    label = F.when(F.col(spec.label_column).isin(list(first[1])), F.lit(first[0]))
    for name, values in rest:
        label = label.when(F.col(spec.label_column).isin(list(values)), F.lit(name))
    rows = df.groupBy(F.col(spec.facet).alias("facet"), label.alias("label")).count().collect()
    counts: dict[str, dict[str, int]] = {}
    excluded = 0
    for row in rows:
        if row["facet"] is None or row["label"] is None:
            excluded += row["count"]
        else:
            counts.setdefault(str(row["facet"]), {})[row["label"]] = row["count"]
    return counts, excluded


def bias_metrics(counts: dict[str, dict[str, int]], labels: list[str]) -> dict[str, dict[str, Any]]:
    """``{facet: {"rows": n_d, "class_imbalance": CI, "dpl": {label: DPL}}}``; a metric is
    ``None`` where it is undefined (a single facet has no ``a`` to compare with)."""
    totals = {facet: sum(by_label.values()) for facet, by_label in counts.items()}
    everything = sum(totals.values())
    label_totals = {label: sum(by_label.get(label, 0) for by_label in counts.values()) for label in labels}
    metrics = {}
    for facet in sorted(counts):
        n_d = totals[facet]
        n_a = everything - n_d
        dpl = {}
        for label in labels:
            in_d = counts[facet].get(label, 0)
            dpl[label] = None if n_a == 0 or n_d == 0 else (label_totals[label] - in_d) / n_a - in_d / n_d
        metrics[facet] = {
            "rows": n_d,
            "class_imbalance": (n_a - n_d) / everything if everything else None,
            "dpl": dpl,
        }
    return metrics


def bias_results(metrics: dict[str, dict[str, Any]], spec: BiasSpec) -> list[CheckResult]:
    """Check ``|CI|`` and the largest ``|DPL|`` of each facet against the spec's bounds."""
    results = []
    for facet, values in metrics.items():
        ci = values["class_imbalance"]
        defined = {label: dpl for label, dpl in values["dpl"].items() if dpl is not None}
        worst = max(defined, key=lambda label: abs(defined[label])) if defined else None
        rows = (
            ("ClassImbalance", ci, spec.max_abs_class_imbalance, f"{values['rows']} rows in the facet"),
            (
                "DifferenceInProportionsOfLabels",
                None if worst is None else defined[worst],
                spec.max_abs_dpl,
                "undefined with a single facet" if worst is None else f"largest for label {worst!r}",
            ),
        )
        for metric, value, bound, note in rows:
            passed = value is None or abs(value) <= bound
            results.append(
                CheckResult(
                    name=f"{metric}({spec.facet}={facet})",
                    kind="bias",
                    level=spec.level,
                    status="Success" if passed else "Failure",
                    metric=metric,
                    observed=value,
                    threshold=f"|value| <= {bound:g}",
                    message=note,
                    line=spec.line,
                )
            )
    return results
