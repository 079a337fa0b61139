"""Replay held-out reviews as live traffic on the local endpoint, and post each answer's reward.

``local`` has no users, so the rollout makes its own traffic: the features stage's ``replay`` split
(held out before balancing, never trained on, the data's natural class mix) is sent review by review
to ``POST /invocations`` at a steady rate with a fixed number of concurrent clients, and every answer
gets ``POST /feedback`` with reward 1 when the served label is the review's sentiment label, else 0.
Reviews are sent as a user would send them (headline and body from the curated snapshot), cycling
through the split in a seeded order until ``max_requests`` are answered.

A server restart is survived: a request that fails to connect (or gets a 5xx) is retried with backoff
against the URL the server publishes when it is back, a feedback post is retried with the same
``inference_id`` (the store makes a repeat a no-op). The client keeps its own tally (``ReplayTally``:
requests answered, rewards posted, per variant, errors, latencies), written atomically to a JSON file
every second and at the end, so a test or an operator can check the server's counts against it.

Run detached by the rollout DAG: ``python -m include.rollout.replay --data-root … --endpoint-name …
--replay-uri … --snapshot-uri … --progress … [--rate 100] [--concurrency 8] [--max-requests 6000]``.
SIGTERM stops it after the requests in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from include.atomic import replace_file
from include.features.text import LABEL_NAMES

RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
PROGRESS_EVERY_S = 1.0


@dataclass(frozen=True)
class ReplayReview:
    """One review as a user sends it, and the label its stars give."""

    review_id: str
    review_headline: str
    review_body: str
    label: str

    def request(self) -> dict[str, str]:
        return {"review_headline": self.review_headline, "review_body": self.review_body}


def read_replay_reviews(replay_dir: Path, snapshot_dir: Path) -> list[ReplayReview]:
    """The replay split's reviews (ids and labels) with their headline and body from the curated snapshot.

    :raises ValueError: if the split is empty or a replay review is missing from the snapshot.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    replay = ds.dataset(replay_dir, format="parquet").to_table(columns=["review_id", "label"])
    if replay.num_rows == 0:
        raise ValueError(f"{replay_dir}: the replay split is empty; nothing to send")
    labels = dict(zip(replay.column("review_id").to_pylist(), replay.column("label").to_pylist(), strict=True))
    snapshot = ds.dataset(snapshot_dir, format="parquet", partitioning="hive")
    texts = snapshot.to_table(
        columns=["review_id", "review_headline", "review_body"],
        filter=pc.field("review_id").isin(list(labels)),
    )
    found = {
        review_id: (headline or "", body or "")
        for review_id, headline, body in zip(
            texts.column("review_id").to_pylist(),
            texts.column("review_headline").to_pylist(),
            texts.column("review_body").to_pylist(),
            strict=True,
        )
    }
    missing = sorted(set(labels) - set(found))
    if missing:
        raise ValueError(f"{snapshot_dir}: {len(missing)} replay reviews are not in the snapshot (first: {missing[0]})")
    return [
        ReplayReview(review_id, *found[review_id], LABEL_NAMES[label]) for review_id, label in sorted(labels.items())
    ]


@dataclass
class ReplayTally:
    """What the replay client itself counted (the server's store must agree)."""

    target: int
    answered: int = 0
    rewards_posted: int = 0
    reward_ones: int = 0
    retries: int = 0
    served_by_variant: Counter[str] = field(default_factory=Counter)
    rewards_by_variant: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    finished: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with latency percentiles instead of every latency."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "latencies_ms"}
        latencies = sorted(self.latencies_ms)

        def percentile(q: float) -> float | None:
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else None

        elapsed = max(time.time() - self.started_at, 1e-9)
        return {
            **data,
            "elapsed_s": round(elapsed, 3),
            "requests_per_s": round(self.answered / elapsed, 2),
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
        }


class ReplayError(RuntimeError):
    """A request failed for good (not a transient fault), or retries ran out."""


class EndpointUnavailable(RuntimeError):
    """The endpoint publishes no address right now (stopped, or restarting): retried like a refused connection."""


def reward_of(served_label: str, true_label: str) -> int:
    """1 when the endpoint's label is the review's sentiment label, else 0."""
    return int(served_label == true_label)


async def replay(
    reviews: Sequence[ReplayReview],
    endpoint_url: Callable[[], str],
    tally: ReplayTally,
    *,
    rate: float,
    concurrency: int,
    seed: int,
    stop: asyncio.Event,
    progress: Callable[[ReplayTally], None] = lambda tally: None,
) -> ReplayTally:
    """Send reviews until ``tally.target`` are answered (or ``stop`` is set), posting every reward.

    :param endpoint_url: the server's current base URL, read for every request (a restarted server may
        have moved); raises :class:`EndpointUnavailable` while there is none.
    :param rate: requests started per second over all clients (0: as fast as the clients go).
    """
    import httpx

    order = list(range(len(reviews)))
    random.Random(seed).shuffle(order)
    next_index = 0
    next_start = time.monotonic()
    lock = asyncio.Lock()

    async def take() -> ReplayReview | None:
        nonlocal next_index, next_start
        async with lock:
            if stop.is_set() or next_index >= tally.target:
                return None
            review = reviews[order[next_index % len(order)]]
            next_index += 1
            if rate > 0:
                next_start = max(next_start, time.monotonic()) + 1.0 / rate
                wait = next_start - 1.0 / rate - time.monotonic()
            else:
                wait = 0.0
        if wait > 0:
            await asyncio.sleep(wait)
        return review

    async def post(client: httpx.AsyncClient, path: str, payload: dict[str, Any]) -> httpx.Response:
        """POST with retries on connection failures and 5xx; other answers are returned as they are."""
        for delay in (*RETRY_DELAYS_S, None):
            try:
                response = await client.post(f"{endpoint_url()}{path}", json=payload)
                if response.status_code < 500:
                    return response
                tally.errors[f"{path} HTTP {response.status_code}"] += 1
            except (httpx.TransportError, EndpointUnavailable) as error:
                tally.errors[f"{path} {type(error).__name__}"] += 1
            if delay is None:
                break
            tally.retries += 1
            await asyncio.sleep(delay)
        raise ReplayError(f"{path}: no answer after {len(RETRY_DELAYS_S)} retries (see the error counts)")

    async def client_loop(client: httpx.AsyncClient) -> None:
        while (review := await take()) is not None:
            started = time.monotonic()
            response = await post(client, "/invocations", review.request())
            if response.status_code != 200:
                raise ReplayError(f"/invocations refused review {review.review_id}: HTTP {response.status_code} {response.text[:300]}")
            [item] = response.json()["predictions"]
            tally.latencies_ms.append((time.monotonic() - started) * 1000)
            tally.answered += 1
            tally.served_by_variant[item["variant"]] += 1
            reward = reward_of(item["label"], review.label)
            answer = await post(client, "/feedback", {"inference_id": item["inference_id"], "reward": reward})
            if answer.status_code not in (200, 201):
                tally.errors[f"/feedback HTTP {answer.status_code}"] += 1
                continue
            tally.rewards_posted += 1
            tally.reward_ones += reward
            tally.rewards_by_variant[item["variant"]] += 1

    async def report() -> None:
        while not stop.is_set():
            progress(tally)
            try:
                await asyncio.wait_for(stop.wait(), PROGRESS_EVERY_S)
            except TimeoutError:
                pass

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        reporter = asyncio.create_task(report())
        try:
            await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        finally:
            stop.set()
            await reporter
    tally.finished = tally.answered >= tally.target
    progress(tally)
    return tally


def write_progress(path: Path, tally: ReplayTally) -> None:
    """The tally as JSON, replaced atomically."""
    replace_file(path, json.dumps(tally.to_dict(), indent=1, sort_keys=True).encode())


def read_progress(path: Path) -> dict[str, Any] | None:
    """The last tally written to ``path``, or ``None`` before the first."""
    return json.loads(path.read_text()) if path.is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    from include.serving.control import read_server_info
    from include.serving.state import EndpointPaths

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument("--replay-uri", required=True, help="the features run's replay split folder")
    parser.add_argument("--snapshot-uri", required=True, help="the curated snapshot the features were built from")
    parser.add_argument("--progress", required=True, type=Path, help="JSON file for the client's tally")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (0: unthrottled)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-requests", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    paths = EndpointPaths.for_endpoint(args.data_root, args.endpoint_name)

    def endpoint_url() -> str:
        info = read_server_info(paths)
        if info is None:
            raise EndpointUnavailable(f"{paths.server} is missing: the endpoint {args.endpoint_name} is not running")
        return info.url

    reviews = read_replay_reviews(Path(args.replay_uri.removeprefix("file://")), Path(args.snapshot_uri.removeprefix("file://")))
    tally = ReplayTally(target=args.max_requests)

    async def run() -> ReplayTally:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        return await replay(
            reviews, endpoint_url, tally, rate=args.rate, concurrency=args.concurrency, seed=args.seed, stop=stop,
            progress=lambda current: write_progress(args.progress, current),
        )

    try:
        asyncio.run(run())
    except ReplayError as error:
        tally.errors[f"stopped: {error}"] += 1
        write_progress(args.progress, tally)
        print(f"replay stopped: {error}")
        return 1
    print(json.dumps(tally.to_dict()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
