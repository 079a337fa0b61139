"""Dynamic batching: concurrent requests share calls, results go back to the right caller, errors do not kill it."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from include.serving.batching import BatcherClosed, MicroBatcher


def run(coroutine):  # noqa: ANN001, ANN201
    return asyncio.run(coroutine)


def test_concurrent_requests_share_calls_and_get_their_own_results() -> None:
    calls: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        calls.append(items)
        return [2 * item for item in items]

    async def scenario() -> list[list[int]]:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(double, executor, max_items=8, max_wait_s=0.05)
            results = await asyncio.gather(*(batcher.submit([i, 100 + i]) for i in range(6)))
            await batcher.close()
            return results

    results = run(scenario())
    assert results == [[2 * i, 200 + 2 * i] for i in range(6)]
    assert [len(items) for items in calls] == [8, 4]  # 4 requests of 2 fill a call; no request is split


def test_max_items_one_is_one_call_per_request_and_a_big_request_runs_alone() -> None:
    sizes: list[int] = []

    def identity(items: list[str]) -> list[str]:
        sizes.append(len(items))
        return items

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as executor:
            unbatched = MicroBatcher(identity, executor, max_items=1, max_wait_s=0.05)
            await asyncio.gather(*(unbatched.submit(["x"]) for _ in range(3)), unbatched.submit(["a", "b", "c"]))
            await unbatched.close()

    run(scenario())
    assert sorted(sizes) == [1, 1, 1, 3]


def test_an_error_reaches_every_caller_of_the_call_and_the_batcher_keeps_working() -> None:
    def fragile(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return items

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(fragile, executor, max_items=4, max_wait_s=0.05)
            outcomes = await asyncio.gather(batcher.submit([13]), batcher.submit([1]), return_exceptions=True)
            assert all(isinstance(outcome, ValueError) for outcome in outcomes)
            assert await batcher.submit([2]) == [2]
            await batcher.close()
            with pytest.raises(BatcherClosed):
                await batcher.submit([3])

    run(scenario())
