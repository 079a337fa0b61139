"""The local endpoint under load while the weights move: 32 concurrent clients, each answer rewarded;
then the same with the server restarted once in the middle.

The client is the rollout's replay generator (``include.rollout.replay``), which keeps its own tally;
the store must agree with it: no request dropped, every reward recorded once. ``make test`` sends
1,000 requests per case; ``make reliability`` the issue's 10,000 (``REVIEWFLOW_LOAD_REQUESTS``) and
records the figures in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from include.features.text import LABEL_NAMES, star_to_label
from include.rollout.replay import ReplayReview, ReplayTally, replay
from include.sample_data import COLUMNS, SampleSpec, generate_rows
from include.serving.control import EndpointClient, read_server_info, start_server, stop_server
from include.serving.feedback import FeedbackStore
from include.serving.variants import VariantSpec
from tests.include.serving.conftest import data_root_with_registry, start_endpoint
from tests.reliability import ReliabilityRecord

REQUESTS = int(os.environ.get("REVIEWFLOW_LOAD_REQUESTS", "1000"))
CLIENTS = 32


def sample_reviews(rows: int = 500) -> list[ReplayReview]:
    col = {name: i for i, name in enumerate(COLUMNS)}
    return [
        ReplayReview(r[col["review_id"]], r[col["review_headline"]], r[col["review_body"]],
                     LABEL_NAMES[star_to_label(int(r[col["star_rating"]]))])
        for r in generate_rows(SampleSpec(rows, seed=3))
    ]


def run_load(data_root: Path, restart_after: int | None) -> tuple[ReplayTally, dict[str, int], dict[str, int], list[float]]:
    """Replay ``REQUESTS`` reviews with ``CLIENTS`` clients while another thread moves the weights (and
    restarts the server once ``restart_after`` answers are in); the tally, the store's counts, the weights set."""
    endpoint = start_endpoint(data_root, [VariantSpec("1", 0.5), VariantSpec("2", 0.5)], ["--threads", "1"])
    tally = ReplayTally(target=REQUESTS)
    done = threading.Event()
    weights_set: list[float] = []

    def move_weights() -> None:
        restarted = restart_after is None
        share = 0.5
        while not done.wait(0.5):
            if not restarted and tally.answered >= restart_after:
                stop_server(endpoint.paths)
                start_server(endpoint.paths, 0, ["--threads", "1"])
                restarted = True
            info = read_server_info(endpoint.paths)
            if info is None:
                continue
            share = 0.9 if share < 0.5 else 0.1
            with EndpointClient(info.url, endpoint.token) as client:
                client.set_weights({"v1": share, "v2": 1 - share})
            weights_set.append(share)

    def url() -> str:
        from include.rollout.replay import EndpointUnavailable

        info = read_server_info(endpoint.paths)
        if info is None:
            raise EndpointUnavailable("restarting")
        return info.url

    mover = threading.Thread(target=move_weights)
    mover.start()
    try:
        asyncio.run(replay(sample_reviews(), url, tally, rate=0, concurrency=CLIENTS, seed=1, stop=asyncio.Event()))
    finally:
        done.set()
        mover.join()
        stop_server(endpoint.paths)
    with closing(FeedbackStore(endpoint.paths.feedback)) as store:
        served: Counter[str] = Counter()
        for count in store.served_since(0).counts:
            served[count.variant] += count.predictions
        rewarded = {v.variant: v.successes + v.failures for v in store.rewards_since(0).variants}
    return tally, dict(served), rewarded, weights_set


@pytest.mark.reliability
@pytest.mark.parametrize("restart", [False, True], ids=["steady", "server-restarted"])
def test_no_request_dropped_and_every_reward_recorded_once_under_load(
    served_registry: Path, tmp_path: Path, restart: bool, reliability: ReliabilityRecord
) -> None:
    data_root = data_root_with_registry(served_registry, tmp_path / "data")
    reliability.section, reliability.path = "Load", "replay client on the local endpoint"
    reliability.case = f"{CLIENTS} clients, {REQUESTS} requests, weights moved every 0.5 s" + (
        ", server restarted at half-way" if restart else "")
    reliability.tried = "every answer rewarded; the store's counts against the clients' own tally"

    tally, served, rewarded, weights_set = run_load(data_root, restart_after=REQUESTS // 2 if restart else None)

    report = tally.to_dict()
    reliability.outcome = (
        f"{report['answered']} answered and {sum(rewarded.values())} rewards recorded once; "
        f"{report['requests_per_s']} requests/s, p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, "
        f"{report['retries']} client retries"
    )
    print(f"\n{reliability.outcome}; errors {dict(report['errors'])}")
    assert tally.finished and tally.answered == REQUESTS and len(weights_set) >= 2
    assert rewarded == dict(tally.rewards_by_variant) and sum(rewarded.values()) == tally.rewards_posted == REQUESTS
    if restart:
        assert tally.retries > 0  # the clients met the restart and retried
        # A request whose answer the restart cut off is served again: at most one extra prediction per retry.
        assert REQUESTS <= sum(served.values()) <= REQUESTS + tally.retries
    else:
        assert served == dict(tally.served_by_variant) and tally.errors == {}
