"""Data-quality gate: a Deequ check suite declared once in YAML, run by PyDeequ or by a
built-in single-pass Spark engine with Deequ's metric definitions.

Modules: ``suite`` (YAML → typed constraints, validated before any Spark work),
``spark_engine`` (single-pass aggregations), ``deequ_engine`` (PyDeequ translation),
``history`` (metrics repository and anomaly checks), ``bias`` (SageMaker Clarify
pre-training bias metrics), ``report`` (JSON/HTML), ``job`` (the ``spark-submit`` entry point).
"""

from pathlib import Path

DEFAULT_SUITE_PATH = Path(__file__).with_name("reviews_suite.yaml")

# ``auto`` (Deequ when its jar loads, else the built-in engine), ``deequ`` or ``spark``.
ENGINES: tuple[str, ...] = ("auto", "deequ", "spark")
