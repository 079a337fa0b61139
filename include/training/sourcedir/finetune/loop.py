"""The training loop: seed, build the model and optimizer, resume, step, evaluate, checkpoint, finish.

Training is seeded and deterministic: a job resumed from a checkpoint ends with the same weights,
metrics and loss history as one that was never interrupted.  Each batch is padded only to its
longest row (batches are grouped by length); a checkpoint is written every ``checkpoint_steps`` and
after each epoch, and the newest one in ``checkpoint_dir`` is resumed from.  Validation macro-F1 picks
the best weights and stops early after ``early_stopping_patience`` evaluations without improvement.
SIGTERM (SageMaker stop, spot interruption, Airflow ``on_kill``) checkpoints after the current step
and exits 143.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import signal
import sys
import time
from typing import Any

import torch

from .checkpoints import TrainerState, latest_checkpoint, load_checkpoint, save_checkpoint, save_weights
from .config import Paths, TrainConfig
from .data import Split, check_token_ids, collate, epoch_batches, parse_class_weights, read_split, sample_rows
from .metrics import evaluate
from .model import ClassifierSpec, SentimentClassifier, new_classifier, save_classifier
from .outputs import write_outputs

LOG = logging.getLogger("reviewflow.train")
EXIT_TERMINATED = 143
NO_DECAY = ("bias", "LayerNorm.weight")


class _Terminate:
    """While active, remembers a SIGTERM so the loop can checkpoint at a step boundary and exit."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _Terminate:
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGTERM, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        LOG.warning("SIGTERM received: checkpointing after the current step")
        self.requested = True


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def read_channels(paths: Paths, config: TrainConfig, num_labels: int) -> tuple[Split, Split | None, Split | None]:
    """The train split (sampled to ``max_train_samples``) and the validation and test splits, when given."""
    train_split = sample_rows(read_split(paths.train, num_labels), config.max_train_samples, config.seed)
    validation = read_split(paths.validation, num_labels) if paths.validation else None
    test = read_split(paths.test, num_labels) if paths.test else None
    LOG.info("rows: train %d, validation %d, test %d", len(train_split), len(validation or []), len(test or []))
    return train_split, validation, test


def optimizer_and_scheduler(model: torch.nn.Module, config: TrainConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW (no weight decay on biases and LayerNorm weights) and a linear schedule with warmup."""
    from transformers import get_linear_schedule_with_warmup

    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(NO_DECAY)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(NO_DECAY)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)


def train(config: TrainConfig, paths: Paths) -> dict[str, Any]:
    """Fine-tune, evaluate and write every output; return the metrics written to ``metrics.json``."""
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    label_names = config.label_names.split(",")
    train_split, validation, test = read_channels(paths, config, len(label_names))

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    absent = tuple(name for k, name in enumerate(label_names) if k not in set(train_split.labels))
    if absent:
        LOG.info("no training rows for %s: the model never predicts %s and is scored on the other labels", absent, absent)
    spec = ClassifierSpec(config.pooling, config.truncation, config.max_seq_length, tuple(label_names), absent)
    model, tokenizer = new_classifier(config.model_name_or_path, spec)
    model.to(device)
    pad_id = tokenizer.pad_token_id or 0
    vocab_size = model.encoder.config.vocab_size
    check_token_ids(train_split, paths.train, config.max_seq_length, vocab_size, config.model_name_or_path)
    weights = parse_class_weights(config.class_weights, train_split.labels, len(label_names))
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, device=device) if weights else None)

    lengths = [len(row) for row in train_split.input_ids]
    steps_per_epoch = math.ceil(len(train_split) / config.train_batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    optimizer, scheduler = optimizer_and_scheduler(model, config, total_steps)

    paths.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    state = TrainerState()
    resume_from = latest_checkpoint(paths.checkpoint_dir)
    if resume_from is not None:
        state = load_checkpoint(resume_from, model, optimizer, scheduler)
        LOG.info("resuming from %s at step %d (epoch %d, batch %d)", resume_from, state.global_step, state.epoch, state.step_in_epoch)
    resumed_from_step = state.global_step
    best_weights = paths.checkpoint_dir / "best-model.safetensors"
    pad_to = None if config.padding == "dynamic" else config.max_seq_length
    LOG.info(
        "training %s: %d rows, %d steps/epoch, %d steps, batch %d, %s padding, lr %g",
        config.model_name_or_path, len(train_split), steps_per_epoch, total_steps,
        config.train_batch_size, config.padding, config.learning_rate,
    )

    def run_evaluation() -> bool:
        """Evaluate on validation; save the best weights; return True to stop early."""
        if validation is None:
            return False
        metrics = evaluate(model, validation, config.eval_batch_size, pad_id, label_names)
        # Better macro-F1, or equal macro-F1 with a lower loss (F1 plateaus on small validation sets).
        improved = (metrics["macro_f1"], -metrics["loss"]) > (state.best_metric, -state.best_loss)
        if improved:
            state.best_metric, state.best_loss = metrics["macro_f1"], metrics["loss"]
            state.best_step, state.evals_without_improvement = state.global_step, 0
            save_weights(model, best_weights)
        else:
            state.evals_without_improvement += 1
        state.eval_log.append({"step": state.global_step, "loss": metrics["loss"], "macro_f1": metrics["macro_f1"]})
        LOG.info(
            "eval step %d | val loss %.4f | val macro-F1 %.4f | val acc %.4f | best %.4f @ %d",
            state.global_step, metrics["loss"], metrics["macro_f1"], metrics["accuracy"], state.best_metric, state.best_step,
        )
        model.train()
        if config.early_stopping_patience and state.evals_without_improvement >= config.early_stopping_patience:
            LOG.info("early stop: no macro-F1 improvement in %d evaluations", state.evals_without_improvement)
            state.stopped_early = True
        return state.stopped_early

    def checkpoint() -> None:
        path = save_checkpoint(paths.checkpoint_dir, model, optimizer, scheduler, state, config.keep_checkpoints)
        LOG.info("checkpoint %s", path.name)

    with _Terminate() as terminate:
        session_start, session_steps = time.monotonic(), 0
        window_loss, window_steps = 0.0, 0
        done = state.stopped_early or state.global_step >= total_steps
        model.train()
        while not done and state.epoch < config.epochs:
            batches = epoch_batches(lengths, config.train_batch_size, config.seed, state.epoch, config.group_by_length)
            for index in batches[state.step_in_epoch :]:
                step_start = time.monotonic()
                input_ids, attention_mask = collate([train_split.input_ids[i] for i in index], pad_to, pad_id)
                labels = torch.tensor([train_split.labels[i] for i in index], device=device)
                logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device))
                loss = loss_fn(logits, labels)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state.global_step += 1
                state.step_in_epoch += 1
                state.train_samples += len(index)
                state.train_seconds += time.monotonic() - step_start
                session_steps += 1
                window_loss, window_steps = window_loss + loss.item(), window_steps + 1
                if state.global_step % config.logging_steps == 0 or state.global_step == total_steps:
                    elapsed = time.monotonic() - session_start
                    state.train_log.append({"step": state.global_step, "loss": window_loss / window_steps})
                    LOG.info(
                        "step %d/%d | epoch %d | loss %.4f | lr %.2e | %.1f samples/s | elapsed %s | ETA %s",
                        state.global_step, total_steps, state.epoch + 1, window_loss / window_steps,
                        scheduler.get_last_lr()[0], state.train_samples / max(state.train_seconds, 1e-9),
                        _duration(elapsed), _duration(elapsed / session_steps * (total_steps - state.global_step)),
                    )
                    window_loss, window_steps = 0.0, 0
                done = state.global_step >= total_steps
                if config.eval_steps and state.global_step % config.eval_steps == 0 and run_evaluation():
                    done = True
                if done or terminate.requested or state.global_step % config.checkpoint_steps == 0:
                    checkpoint()
                if terminate.requested:
                    LOG.warning("exiting after checkpoint at step %d", state.global_step)
                    sys.exit(EXIT_TERMINATED)
                if done:
                    break
            else:
                state.epoch, state.step_in_epoch = state.epoch + 1, 0
                if not config.eval_steps and run_evaluation():
                    done = True
                checkpoint()

    if validation is not None and (not state.eval_log or state.eval_log[-1]["step"] != state.global_step):
        run_evaluation()
    if best_weights.is_file():
        from safetensors.torch import load_model as load_weights

        load_weights(model, str(best_weights), device=str(device))
        LOG.info("using the best weights: step %d, validation macro-F1 %.4f", state.best_step, state.best_metric)
    splits = {"validation": validation, "test": test}
    metrics = final_metrics(config, model, state, resumed_from_step, len(train_split), splits, pad_id)
    save_classifier(model, tokenizer, paths.model_dir)
    write_outputs(paths, metrics, state)
    return metrics


def final_metrics(
    config: TrainConfig, model: SentimentClassifier, state: TrainerState, resumed_from_step: int, train_rows: int,
    splits: dict[str, Split | None], pad_id: int,
) -> dict[str, Any]:
    """What ``metrics.json`` holds: the hyperparameters, the run's figures and the scores on each given split."""
    label_names = list(model.spec.label_names)
    metrics: dict[str, Any] = {
        "model_name_or_path": config.model_name_or_path,
        "label_names": label_names,
        "hyperparameters": dataclasses.asdict(config),
        "training": {
            "global_step": state.global_step,
            "train_rows": train_rows,
            "epochs": round(state.train_samples / train_rows, 3) if train_rows else 0.0,
            "train_samples": state.train_samples,
            "train_seconds": round(state.train_seconds, 3),
            "samples_per_second": state.train_samples / state.train_seconds if state.train_seconds else 0.0,
            "stopped_early": state.stopped_early,
            "best_step": state.best_step,
            "best_validation_macro_f1": state.best_metric if state.best_step else None,
            "resumed_from_step": resumed_from_step,
        },
    }
    for name, split in splits.items():
        if split is not None:
            metrics[name] = evaluate(model, split, config.eval_batch_size, pad_id, label_names)
            LOG.info("%s: macro-F1 %.4f, accuracy %.4f (%d rows)", name, metrics[name]["macro_f1"], metrics[name]["accuracy"], len(split))
    return metrics
