"""Fine-tuning the review-sentiment classifier: the package ``train.py`` runs (a SageMaker ``source_dir``).

Modules, each readable alone:

* :mod:`.config` — :class:`~.config.TrainConfig` (every hyperparameter, with help text) and the
  SageMaker paths; :mod:`.parser` builds the CLI from it as ``HfArgumentParser`` does.
* :mod:`.data` — the channels' Parquet files, row sampling, length-grouped batches, padding.
* :mod:`.model` — the classifier (encoder, pooling, head) and its pickle-free model folder.
* :mod:`.metrics` — predictions, accuracy, macro-F1, per-class figures, confusion matrix.
* :mod:`.checkpoints` — exact-resume checkpoints and the trainer state.
* :mod:`.loop` — the training loop (seeding, optimizer, evaluation, early stopping, SIGTERM).
* :mod:`.outputs` — ``metrics.json``, ``history.json`` and the plots.

Imports inside the package are relative, and nothing here imports the rest of the repository: in a
training container the package is the top-level ``finetune``; in the repository it is
``include.training.sourcedir.finetune`` (evaluation and serving load models with :mod:`.model`).
"""
