"""Dynamic batching: concurrent requests share one call of a batch function, as Triton and TorchServe do.

:class:`MicroBatcher` queues the items of each request; one worker task takes the first waiting request,
gathers more for at most ``max_wait_s`` (or until ``max_items`` items), runs ``process`` once on all of
them in an executor thread and hands each request its slice of the results.  A request is never split
across calls; one larger than ``max_items`` runs alone.  ``max_items=1`` turns batching off (one call per
request); ``max_wait_s=0`` takes only what is already waiting (group commit for the feedback store).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


_STOP = object()


class BatcherClosed(RuntimeError):
    """The batcher was closed (its variant was removed, or the server is stopping)."""


@dataclass
class _Request(Generic[Item, Result]):
    items: Sequence[Item]
    future: asyncio.Future[list[Result]] = field(repr=False)


class MicroBatcher(Generic[Item, Result]):
    """Run ``process`` on the items of concurrent :meth:`submit` calls together.

    :param process: maps a list of items to a list of results of the same length (runs in ``executor``).
    :param executor: where ``process`` runs (a single thread keeps model or database use serial).
    :param max_items: items per call of ``process`` (``1``: no batching).
    :param max_wait_s: how long the first waiting request waits for company.
    """

    def __init__(
        self, process: Callable[[list[Item]], list[Result]], executor: Executor, max_items: int, max_wait_s: float
    ) -> None:
        if max_items < 1 or max_wait_s < 0:
            raise ValueError(f"max_items must be >= 1 and max_wait_s >= 0, got {max_items} and {max_wait_s}")
        self.process = process
        self.executor = executor
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self.calls = 0
        self._queue: asyncio.Queue[_Request[Item, Result] | object] = asyncio.Queue()
        self._held: _Request[Item, Result] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """The results of ``items``, computed with whatever else is waiting.

        :raises BatcherClosed: after :meth:`close`.
        """
        if self._closed:
            raise BatcherClosed("this batcher is closed")
        loop = asyncio.get_running_loop()
        if self._worker is None:
            self._worker = loop.create_task(self._run())
        future: asyncio.Future[list[Result]] = loop.create_future()
        self._queue.put_nowait(_Request(items, future))
        return await future

    async def close(self) -> None:
        """Finish what is queued, then stop the worker; later :meth:`submit` calls raise :class:`BatcherClosed`."""
        self._closed = True
        if self._worker is not None:
            self._queue.put_nowait(_STOP)
            await self._worker

    async def _more(self, timeout: float) -> _Request[Item, Result] | object | None:
        """The next queued request (or ``_STOP``), waiting at most ``timeout`` seconds; ``None`` if none came."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            if timeout <= 0:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = self._held or await self._queue.get()
            self._held = None
            if not isinstance(first, _Request):
                return
            group, size, stop = [first], len(first.items), False
            deadline = loop.time() + self.max_wait_s
            while size < self.max_items:
                request = await self._more(deadline - loop.time())
                if request is None:
                    break
                if not isinstance(request, _Request):
                    stop = True
                    break
                if size + len(request.items) > self.max_items:
                    self._held = request
                    break
                group.append(request)
                size += len(request.items)
            await self._call(loop, group)
            if stop:
                return

    async def _call(self, loop: asyncio.AbstractEventLoop, group: list[_Request[Item, Result]]) -> None:
        items = [item for request in group for item in request.items]
        self.calls += 1
        try:
            results = await loop.run_in_executor(self.executor, self.process, items)
        except Exception as error:  # every waiting request gets the error; the worker lives on
            for request in group:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        start = 0
        for request in group:
            if not request.future.done():
                request.future.set_result(results[start : start + len(request.items)])
            start += len(request.items)
