"""Feature engineering for the sentiment model: labels, balanced deterministic splits, BERT tokens, scaling.

The Spark job is :mod:`include.features.job` (``spark-submit``-able); the pieces it is built from are
plain functions in :mod:`~include.features.text`, :mod:`~include.features.splits`,
:mod:`~include.features.scaling`, :mod:`~include.features.tokenizer` and :mod:`~include.features.store`.
"""
