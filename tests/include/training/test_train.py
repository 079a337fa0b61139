"""train.py: data checks, batching, metrics, a smoke fine-tune, and resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.training.jobs import ENTRY_POINT, SOURCE_DIR
from include.training.sourcedir.finetune.checkpoints import STATE_FILE, latest_checkpoint
from include.training.sourcedir.finetune.config import LABEL_NAMES, TrainConfig, parse_args
from include.training.sourcedir.finetune.data import (
    InputError,
    Split,
    collate,
    epoch_batches,
    parse_class_weights,
    read_split,
    sample_rows,
)
from include.training.sourcedir.finetune.loop import EXIT_TERMINATED, train
from include.training.sourcedir.finetune.metrics import classification_metrics, evaluate, predict
from include.training.sourcedir.finetune.model import load_classifier
from tests.reliability import ReliabilityRecord

TRAIN_PY = SOURCE_DIR / ENTRY_POINT
FAST = ["--num_threads", "1", "--max_seq_length", "64", "--train_batch_size", "16", "--logging_steps", "2"]


def sm_env(features: Path, work: Path) -> dict[str, str]:
    """The SageMaker environment a training container would see, pointing into ``work``."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONHASHSEED": "0",
        "SM_MODEL_DIR": str(work / "model"),
        "SM_OUTPUT_DATA_DIR": str(work / "output"),
        "SM_CHECKPOINT_DIR": str(work / "checkpoints"),
        "SM_CHANNEL_TRAIN": str(features / "train"),
        "SM_CHANNEL_VALIDATION": str(features / "validation"),
        "SM_CHANNEL_TEST": str(features / "test"),
    }


def test_parse_args_reads_sagemaker_environment(tmp_path: Path) -> None:
    config, paths = parse_args(
        ["--epochs", "5", "--group_by_length", "false", "--class_weights", "1,2,3"], sm_env(tmp_path, tmp_path)
    )
    assert (config.epochs, config.group_by_length, config.class_weights) == (5, False, "1,2,3")
    assert config.learning_rate == TrainConfig.learning_rate
    assert paths.model_dir == tmp_path / "model"
    assert paths.train == tmp_path / "train" and paths.test == tmp_path / "test"
    assert paths.checkpoint_dir == tmp_path / "checkpoints"
    _, defaults = parse_args([], {})
    assert defaults.checkpoint_dir == Path("/opt/ml/checkpoints") and defaults.validation is None
    assert (config.pooling, config.truncation) == ("mean", "head")
    for bad in (["--pooling", "max"], ["--truncation", "tail"]):
        with pytest.raises(SystemExit):
            parse_args(bad, {})


def test_class_weights() -> None:
    labels = [0, 2, 2, 2]
    assert parse_class_weights("", labels, 3) is None
    # n / (present labels * count); a label with no row (neutral here) gets 0
    assert parse_class_weights("auto", labels, 3) == pytest.approx([4 / 2, 0.0, 4 / 6])
    assert parse_class_weights("1,0,0.5", labels, 3) == [1.0, 0.0, 0.5]
    for bad in ("1,2", "0,0,0", "1,-1,1"):
        with pytest.raises(ValueError, match="3 numbers >= 0"):
            parse_class_weights(bad, labels, 3)


def test_read_split_names_file_row_and_field(tmp_path: Path) -> None:
    good = {"review_id": ["a", "b"], "label": [0, 2], "input_ids": [[101, 102], [101, 5, 102]]}
    pq.write_table(pa.table(good), tmp_path / "part-0.parquet")
    pq.write_table(pa.table({**good, "label": [1, 7]}), tmp_path / "part-1.parquet")
    with pytest.raises(InputError, match=r"part-1\.parquet row 1: field 'label' is 7"):
        read_split(tmp_path, 3)
    pq.write_table(pa.table({"review_id": ["c"], "label": [1]}), tmp_path / "part-1.parquet")
    with pytest.raises(InputError, match=r"part-1\.parquet: missing column\(s\) \['input_ids'\]"):
        read_split(tmp_path, 3)


def test_sample_rows_is_seeded_and_draws_from_every_class() -> None:
    labels = [0] * 300 + [1] * 300 + [2] * 300  # feature files come grouped by label
    split = Split([[101, i, 102] for i in range(900)], labels, [f"r{i}" for i in range(900)])
    sampled = sample_rows(split, 90, seed=7)
    assert len(sampled) == 90 and set(sampled.labels) == {0, 1, 2}
    assert sampled.review_ids == sample_rows(split, 90, seed=7).review_ids
    assert sampled.review_ids != sample_rows(split, 90, seed=8).review_ids
    assert sample_rows(split, 0, seed=7) is split and sample_rows(split, 5_000, seed=7) is split


def test_epoch_batches_are_a_seeded_permutation_grouped_by_length() -> None:
    import random

    lengths = [random.Random(1).randint(5, 120) for _ in range(1000)] + list(range(5, 505))
    grouped = epoch_batches(lengths, 16, seed=3, epoch=0, group_by_length=True)
    plain = epoch_batches(lengths, 16, seed=3, epoch=0, group_by_length=False)
    for batches in (grouped, plain):
        assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert grouped == epoch_batches(lengths, 16, seed=3, epoch=0, group_by_length=True)
    assert grouped != epoch_batches(lengths, 16, seed=3, epoch=1, group_by_length=True)

    def padded(batches: list[list[int]]) -> int:
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    assert padded(grouped) < 0.8 * padded(plain)


def test_collate_pads_dynamically_or_to_max_length() -> None:
    ids, mask = collate([[101, 7, 102], [101, 102]], None, pad_id=0)
    assert ids.tolist() == [[101, 7, 102], [101, 102, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    ids, mask = collate([[101, 102]], 4, pad_id=0)
    assert ids.tolist() == [[101, 102, 0, 0]] and mask.tolist() == [[1, 1, 0, 0]]


def test_metrics_cover_only_present_labels() -> None:
    metrics = classification_metrics([0, 0, 2, 2], [0, 2, 2, 2], LABEL_NAMES, present=[0, 2])
    assert set(metrics["per_class"]) == {"negative", "positive"} and metrics["matrix_labels"] == ["negative", "positive"]
    assert metrics["confusion_matrix"] == [[1, 1], [0, 2]]
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_a_label_without_training_rows_is_never_predicted(features_dir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    import pyarrow.compute as pc

    two_class = tmp_path / "features"
    for split in ("train", "test"):
        table = pq.read_table(features_dir / split)
        (two_class / split).mkdir(parents=True)
        pq.write_table(table.filter(pc.not_equal(table["label"], 1)), two_class / split / "part-0.parquet")
    env = {k: v for k, v in sm_env(two_class, tmp_path).items() if k != "SM_CHANNEL_VALIDATION"}
    config, paths = parse_args([*FAST, "--model_name_or_path", str(tiny_model_dir), "--max_steps", "2"], env)
    metrics = train(config, paths)
    assert set(metrics["test"]["per_class"]) == {"negative", "positive"}
    model = load_classifier(paths.model_dir)
    assert model.spec.absent_labels == ("neutral",)
    logits = predict(model, read_split(two_class / "test", 3), 32, 0)
    assert logits[:, 1].eq(float("-inf")).all() and 1 not in logits.argmax(-1).tolist()


def test_classification_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    truth = [0, 0, 1, 1, 2, 2, 2, 2, 1, 0]
    guess = [0, 2, 1, 0, 2, 2, 1, 2, 2, 0]
    metrics = classification_metrics(truth, guess, LABEL_NAMES)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, guess))
    assert metrics["macro_f1"] == pytest.approx(f1_score(truth, guess, average="macro"))
    assert metrics["confusion_matrix"] == confusion_matrix(truth, guess).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(truth, guess)
    for k, name in enumerate(LABEL_NAMES):
        assert metrics["per_class"][name] == pytest.approx(
            {"precision": precision[k], "recall": recall[k], "f1": f1[k], "support": support[k]}
        )


def test_smoke_fine_tune_writes_every_output_and_loss_goes_down(features_dir: Path, tmp_path: Path) -> None:
    config, paths = parse_args(
        [*FAST, "--max_train_samples", "96", "--train_batch_size", "8", "--epochs", "2", "--eval_steps", "12",
         "--checkpoint_steps", "10", "--learning_rate", "2e-4"],
        sm_env(features_dir, tmp_path),
    )
    metrics = train(config, paths)

    model = paths.model_dir
    for name in ("model.safetensors", "config.json", "tokenizer.json", "label_map.json", "classifier.json", "metrics.json"):
        assert (model / name).is_file(), name
    assert not list(model.glob("*.bin")) and not list(model.glob("*.pt"))
    assert json.loads((model / "label_map.json").read_text())["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    described = json.loads((model / "classifier.json").read_text())
    assert described | {"format": "x"} == {
        "pooling": "mean", "truncation": "head", "max_seq_length": 64, "absent_labels": [],
        "label_names": ["negative", "neutral", "positive"], "format": "x",
    }
    reloaded = load_classifier(model)
    split = read_split(features_dir / "test", 3)
    assert evaluate(reloaded, split, 32, 0, LABEL_NAMES)["confusion_matrix"] == metrics["test"]["confusion_matrix"]
    for name in ("metrics.json", "history.json", "plots/loss_curves.png", "plots/confusion_matrix.png"):
        assert (paths.output_dir / name).is_file(), name
    assert (paths.output_dir / "plots/loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads((paths.output_dir / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics))
    assert metrics["training"]["global_step"] == 24 and metrics["training"]["resumed_from_step"] == 0
    assert metrics["training"]["train_rows"] == 96 and metrics["training"]["epochs"] == 2.0
    for split in ("validation", "test"):
        assert set(metrics[split]) >= {"accuracy", "macro_f1", "per_class", "confusion_matrix", "loss"}
        assert sum(map(sum, metrics[split]["confusion_matrix"])) == pq.read_table(features_dir / split).num_rows
    history = json.loads((paths.output_dir / "history.json").read_text())
    losses = [entry["loss"] for entry in history["train"]]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert [entry["step"] for entry in history["eval"]] == [12, 24]


def _run(features: Path, work: Path, model: Path, kill_after: str | None = None) -> tuple[int, str]:
    """Run train.py as the SageMaker container would; SIGKILL it when ``kill_after`` is logged."""
    command = [sys.executable, str(TRAIN_PY), *FAST, "--max_steps", "12", "--checkpoint_steps", "4", "--eval_steps", "6"]
    command += ["--epochs", "1"]
    command += ["--model_name_or_path", str(model)]
    process = subprocess.Popen(
        command, env=sm_env(features, work), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if kill_after and kill_after in line:
            process.send_signal(signal.SIGKILL)
            break
    return process.wait(timeout=120), "".join(lines)


@pytest.mark.reliability
def test_resume_after_kill_continues_from_the_checkpoint(
    features_dir: Path, tiny_model_dir: Path, tmp_path: Path, reliability: ReliabilityRecord
) -> None:
    reliability.section, reliability.case = "Kills", "train.py: kill -9 after its step-8 checkpoint (of 12)"
    reliability.path = "include/training/sourcedir/train.py in a subprocess, as SageMaker runs it"
    reliability.tried = "SIGKILL once the log says checkpoint-00000008 is written; then the same job again"
    code, log = _run(features_dir, tmp_path / "killed", tiny_model_dir, kill_after="checkpoint checkpoint-00000008")
    assert code == -signal.SIGKILL and "step 12/12" not in log
    code, log = _run(features_dir, tmp_path / "killed", tiny_model_dir)
    assert code == 0, log
    assert "resuming from" in log and "at step 8 " in log
    assert "step 2/12" not in log and "step 10/12" in log
    resumed = json.loads((tmp_path / "killed/output/metrics.json").read_text())
    assert resumed["training"]["resumed_from_step"] == 8 and resumed["training"]["global_step"] == 12

    code, log = _run(features_dir, tmp_path / "straight", tiny_model_dir)
    assert code == 0, log
    straight = json.loads((tmp_path / "straight/output/metrics.json").read_text())
    # Deterministic: the resumed run ends exactly where the uninterrupted one does.
    assert resumed["test"] == straight["test"] and resumed["validation"] == straight["validation"]
    assert json.loads((tmp_path / "killed/output/history.json").read_text()) == json.loads(
        (tmp_path / "straight/output/history.json").read_text()
    )
    reliability.outcome = (
        "the killed job exited by SIGKILL before step 12; the retry resumed at step 8 (steps 9-12 only) and ended "
        "with the uninterrupted job's validation and test metrics and loss history, exactly"
    )


def test_sigterm_checkpoints_and_exits(features_dir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    command = [sys.executable, str(TRAIN_PY), *FAST, "--epochs", "5", "--max_steps", "30", "--checkpoint_steps", "100"]
    command += ["--model_name_or_path", str(tiny_model_dir)]
    process = subprocess.Popen(
        command, env=sm_env(features_dir, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "step 2/30" in line:
            process.send_signal(signal.SIGTERM)
            break
    rest = process.stdout.read()
    assert process.wait(timeout=120) == EXIT_TERMINATED, rest
    checkpoint = latest_checkpoint(tmp_path / "checkpoints")
    assert checkpoint is not None
    step = json.loads((checkpoint / STATE_FILE).read_text())["global_step"]
    assert 2 <= step < 30 and f"exiting after checkpoint at step {step}" in rest
