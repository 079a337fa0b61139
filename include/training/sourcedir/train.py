"""Fine-tune a BERT-family encoder into a 3-class review-sentiment classifier: the SageMaker entry point.

This folder is the training job's ``source_dir``.  SageMaker's script mode unpacks it into
``/opt/ml/code`` and runs ``python train.py --epochs 2 …`` there (the hyperparameters as CLI
arguments, paths from ``SM_MODEL_DIR``, ``SM_OUTPUT_DATA_DIR``, ``SM_CHECKPOINT_DIR`` and
``SM_CHANNEL_<NAME>``); the local backend runs this file in a subprocess with the same ``SM_*``
environment.  Run as a script, its folder is ``sys.path[0]``, so the ``finetune`` package beside it
imports as a top-level package in both places.  ``python train.py --help`` lists every argument.

Input channels are folders of the features stage's Parquet files (``input_ids`` unpadded,
``label`` 0/1/2).  Outputs: ``SM_MODEL_DIR`` gets the best model (safetensors), tokenizer,
``label_map.json`` and ``metrics.json``; ``SM_OUTPUT_DATA_DIR`` gets ``metrics.json``,
``history.json`` and ``plots/{loss_curves,confusion_matrix}.png``.  Training is seeded, resumes
exactly from the newest checkpoint, and on SIGTERM checkpoints and exits 143 (``finetune.loop``);
input it cannot use (``finetune.data.InputError``) exits 65.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from finetune.config import parse_args
from finetune.data import InputError
from finetune.loop import train

LOG = logging.getLogger("reviewflow.train")
# An InputError: a retry on the same features fails the same way (include.training.jobs.EXIT_BAD_INPUT).
EXIT_BAD_INPUT = 65


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout, force=True
    )
    config, paths = parse_args(argv, os.environ)
    try:
        train(config, paths)
    except InputError as error:
        LOG.error("InputError: %s", error)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
