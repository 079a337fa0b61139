"""Feedback: served predictions and their rewards, and the reader API the rollout counts them with.

``local``: :class:`FeedbackStore`, one SQLite file under the data root in WAL mode, so the endpoint
server writes while the rollout task reads from another process (WAL readers never block the writer or
each other).  Every write transaction is committed with ``synchronous=FULL`` before the server answers,
so an answered reward survives a crash or power cut.  Tables:

* ``predictions`` — one row per served review (``sequence`` autoincrement: the served cursor,
  ``inference_id`` unique, ``request_id``, ``variant``, ``model_version``, ``weights_generation``,
  ``served_at``, ``label``), written before the answer goes out;
* ``rewards`` — ``sequence`` (autoincrement: the reward cursor), ``inference_id`` (unique, references a
  prediction), ``reward`` 0 or 1, ``recorded_at``.

The reader API (:class:`FeedbackReader`, also implemented on S3 by :mod:`include.serving.s3_feedback`):
:meth:`~FeedbackReader.rewards_since` aggregates the rewards recorded after a cursor per variant, joined
to the variant and model version that served them (a late reward counts whenever it arrives), and
returns the new cursor; :meth:`~FeedbackReader.served_since` counts the requests and predictions served
after its own cursor per weights generation and variant (sample-ratio check, budget, regret).  Each call
counts every row once: a writer commits rows in cursor order (SQLite has one writer at a time), so a
reader's snapshot never holds a row while missing an earlier one.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    inference_id TEXT NOT NULL UNIQUE,
    request_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    model_version TEXT NOT NULL,
    weights_generation INTEGER NOT NULL,
    served_at TEXT NOT NULL,
    label TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rewards (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    inference_id TEXT NOT NULL UNIQUE REFERENCES predictions (inference_id),
    reward INTEGER NOT NULL CHECK (reward IN (0, 1)),
    recorded_at TEXT NOT NULL
);
"""
BUSY_TIMEOUT_MS = 10_000


class RewardOutcome(Enum):
    """What recording one reward did: the HTTP answer is 201, 200, 409 and 404 respectively."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    UNKNOWN = "unknown"


def check_reward(value: object) -> int:
    """``value`` as a 0/1 reward (``true``/``false`` and ``1.0``/``0.0`` too).

    :raises ValueError: for anything else: the bandit's Beta-Bernoulli posteriors need success or failure.
    """
    if isinstance(value, (bool, int, float)) and value in (0, 1):
        return int(value)
    raise ValueError(f"reward: must be 0 or 1, got {value!r}")


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class ServedPrediction:
    """One served review, as recorded before the answer goes out."""

    inference_id: str
    request_id: str
    variant: str
    model_version: str
    weights_generation: int
    served_at: str
    label: str


@dataclass(frozen=True)
class VariantRewards:
    """Rewards of one variant in a :class:`RewardBatch`."""

    variant: str
    model_version: str
    successes: int
    failures: int


@dataclass(frozen=True)
class RewardBatch:
    """Rewards recorded after a cursor, per variant, and the cursor to pass next time.

    :param cursor: opaque, non-decreasing integer; start with 0 (local: the last reward ``sequence``
        read; aws: a watermark in epoch milliseconds).
    """

    cursor: int
    variants: tuple[VariantRewards, ...]


@dataclass(frozen=True)
class ServedCount:
    """Requests and predictions (a batch request has several) one variant served in one weights generation."""

    weights_generation: int
    variant: str
    model_version: str
    requests: int
    predictions: int


@dataclass(frozen=True)
class ServedBatch:
    """What was served after a cursor, per weights generation and variant, and the cursor to pass next time.

    :param cursor: opaque, non-decreasing integer; start with 0 (local: the last prediction ``sequence``
        read; aws: a watermark in epoch milliseconds).
    """

    cursor: int
    counts: tuple[ServedCount, ...]


class FeedbackReader(Protocol):
    """What the rollout reads; :class:`FeedbackStore` (local) and ``S3FeedbackReader`` (aws) implement it.

    The answers are frozen dataclasses (``dataclasses.asdict`` makes them JSON-ready).
    """

    def rewards_since(self, cursor: int) -> RewardBatch:
        """Rewards recorded after ``cursor``, per variant that served them, and the new cursor."""
        ...

    def served_since(self, cursor: int) -> ServedBatch:
        """Requests/predictions served after ``cursor``, per weights generation and variant, and the new cursor."""
        ...

    def close(self) -> None:
        """Release what the reader holds (``contextlib.closing`` calls it)."""
        ...


class FeedbackStore:
    """The local feedback store: ``feedback.db`` (SQLite, WAL) under the endpoint's folder.

    One instance per thread: the server keeps one on its store thread; a reader opens its own.

    :param path: the database file (created with its schema on first use).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing (the server) ---------------------------------------------------------------

    def record_predictions(self, rows: Sequence[ServedPrediction]) -> list[None]:
        """Insert served predictions in one committed transaction (one ``None`` per row, for the batcher)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT INTO predictions (inference_id, request_id, variant, model_version, weights_generation,"
                " served_at, label) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(r.inference_id, r.request_id, r.variant, r.model_version, r.weights_generation, r.served_at, r.label)
                 for r in rows],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return [None] * len(rows)

    def record_rewards(self, events: Sequence[tuple[str, int]]) -> list[RewardOutcome]:
        """Record ``(inference_id, reward)`` events in one committed transaction, each idempotently.

        A repeat of a recorded reward is a ``DUPLICATE`` (nothing written), a different reward for the
        same id a ``CONFLICT`` (refused), an id never served ``UNKNOWN``.
        """
        outcomes = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for inference_id, reward in events:
                found = self._db.execute("SELECT reward FROM rewards WHERE inference_id = ?", (inference_id,)).fetchone()
                served = self._db.execute("SELECT 1 FROM predictions WHERE inference_id = ?", (inference_id,)).fetchone()
                if found is not None:
                    outcomes.append(RewardOutcome.DUPLICATE if found[0] == reward else RewardOutcome.CONFLICT)
                elif served is None:
                    outcomes.append(RewardOutcome.UNKNOWN)
                else:
                    self._db.execute(
                        "INSERT INTO rewards (inference_id, reward, recorded_at) VALUES (?, ?, ?)",
                        (inference_id, reward, utc_now()),
                    )
                    outcomes.append(RewardOutcome.RECORDED)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return outcomes

    # --- reading (the rollout) --------------------------------------------------------------

    def rewards_since(self, cursor: int) -> RewardBatch:
        rows = self._db.execute(
            """
            SELECT p.variant, p.model_version, SUM(r.reward), SUM(1 - r.reward), MAX(r.sequence)
            FROM rewards AS r JOIN predictions AS p USING (inference_id)
            WHERE r.sequence > ?
            GROUP BY p.variant, p.model_version
            ORDER BY p.variant, p.model_version
            """,
            (cursor,),
        ).fetchall()
        return RewardBatch(
            cursor=max([cursor, *(row[4] for row in rows)]),
            variants=tuple(VariantRewards(*row[:4]) for row in rows),
        )

    def served_since(self, cursor: int) -> ServedBatch:
        rows = self._db.execute(
            """
            SELECT weights_generation, variant, model_version, COUNT(DISTINCT request_id), COUNT(*), MAX(sequence)
            FROM predictions
            WHERE sequence > ?
            GROUP BY weights_generation, variant, model_version
            ORDER BY weights_generation, variant, model_version
            """,
            (cursor,),
        ).fetchall()
        return ServedBatch(max([cursor, *(row[5] for row in rows)]), tuple(ServedCount(*row[:5]) for row in rows))
