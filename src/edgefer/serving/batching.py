"""Dynamic batching: concurrent requests share one forward pass.

A batch starts with the first waiting request and closes when it holds ``max_batch_size`` samples
or ``max_delay_ms`` has passed. The model runs on one worker thread, so the event loop keeps
accepting requests meanwhile. Every request gets its own rows back; if the model raises, every
request of that batch gets the error. Requests with different per-sample shapes are batched
separately.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = ["BatchResult", "DynamicBatcher"]


@dataclass
class BatchResult:
    output: np.ndarray  # this request's rows
    compute_ms: float  # the forward pass that served it
    batch_size: int  # samples in that forward pass


@dataclass
class _Pending:
    x: np.ndarray
    future: asyncio.Future


class DynamicBatcher:
    def __init__(
        self, run: Callable[[np.ndarray], np.ndarray], *, max_batch_size: int = 8, max_delay_ms: float = 2.0
    ) -> None:
        if max_batch_size < 1 or max_delay_ms < 0:
            raise ValueError(f"need max_batch_size >= 1 and max_delay_ms >= 0, got {max_batch_size}, {max_delay_ms}")
        self.run, self.max_batch_size, self.max_delay = run, max_batch_size, max_delay_ms / 1000
        self.forward_passes = 0
        self.requests = 0
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgefer-model")
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._executor.shutdown(wait=True)
        self._task = None

    async def submit(self, x: np.ndarray) -> BatchResult:
        if self._task is None:
            raise RuntimeError("the batcher is not running; call start() first")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(x, future))
        return await future

    async def _collect(self, first: _Pending) -> tuple[list[_Pending], bool]:
        batch, size, stopping = [first], len(first.x), False
        deadline = asyncio.get_running_loop().time() + self.max_delay
        while size < self.max_batch_size:
            timeout = deadline - asyncio.get_running_loop().time()
            try:
                item = self._queue.get_nowait() if timeout <= 0 else await asyncio.wait_for(self._queue.get(), timeout)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if item is None:
                stopping = True
                break
            batch.append(item)
            size += len(item.x)
        return batch, stopping

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch, stopping = await self._collect(first)
            groups: dict[tuple, list[_Pending]] = {}
            for item in batch:
                groups.setdefault((item.x.dtype, item.x.shape[1:]), []).append(item)
            for items in groups.values():
                await self._run(loop, items)
            if stopping:
                return

    async def _run(self, loop: asyncio.AbstractEventLoop, items: list[_Pending]) -> None:
        x = np.concatenate([item.x for item in items]) if len(items) > 1 else items[0].x
        started = time.perf_counter()
        try:
            y = await loop.run_in_executor(self._executor, self.run, x)
        except Exception as exc:  # every request of the batch learns why
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            self.forward_passes += 1
            self.requests += len(items)
        compute_ms = (time.perf_counter() - started) * 1000
        offset = 0
        for item in items:
            rows = len(item.x)
            if not item.future.done():
                item.future.set_result(BatchResult(y[offset : offset + rows], compute_ms, len(x)))
            offset += rows
