"""Dynamic batching on one asyncio event loop.

Each request puts its instances on one queue and awaits a future per instance. ``workers``
collector tasks each own one model (its own ONNX Runtime sessions): a collector takes the
first waiting instance, then waits at most ``max_wait`` seconds for more, up to
``max_batch_size``, and runs the batch in a thread (ONNX Runtime releases the GIL), so the
event loop keeps accepting requests meanwhile. Under load, instances pile up while a batch
runs and the next batch is full at once; a lone request waits at most ``max_wait``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from keras_s2s.serving.protocol import RequestError


@dataclasses.dataclass
class _Item:
    payload: Any
    future: asyncio.Future


class DynamicBatcher:
    """``run_batch(model, payloads) -> results`` (one result per payload, same order) runs in a
    worker thread with one of ``models``; at most one batch per model at a time."""

    def __init__(
        self,
        run_batch: Callable[[Any, list], list],
        models: Sequence[Any],
        *,
        max_batch_size: int,
        max_wait: float,
        max_queued: int,
    ) -> None:
        if max_batch_size < 1 or max_wait < 0 or max_queued < max_batch_size or not models:
            raise ValueError(f"invalid batching: max_batch_size={max_batch_size}, max_wait={max_wait}, "
                             f"max_queued={max_queued}, {len(models)} models")
        self.run_batch = run_batch
        self.models = list(models)
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self.max_queued = max_queued
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(len(self.models), thread_name_prefix="keras-s2s-batch")
        self._tasks: list[asyncio.Task] = []
        self.batches = 0
        self.instances = 0
        """Batches run and instances in them so far (their ratio is the mean batch size, in /healthz)."""

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._collect(model)) for model in self.models]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(RequestError(503, "the server is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, payloads: Sequence[Any]) -> list:
        """Results for ``payloads``, batched with whatever else is waiting. Raises RequestError(503)
        when more than ``max_queued`` instances would wait (TF Serving's UNAVAILABLE)."""
        if len(payloads) > self.max_queued:
            raise RequestError(400, f"{len(payloads)} instances in one request, more than the limit of {self.max_queued}; "
                                    "split the request")
        if self._queue.qsize() + len(payloads) > self.max_queued:
            raise RequestError(503, f"the server is overloaded ({self._queue.qsize()} instances waiting, "
                                    f"at most {self.max_queued}); retry later")
        loop = asyncio.get_running_loop()
        items = [_Item(payload, loop.create_future()) for payload in payloads]
        for item in items:
            self._queue.put_nowait(item)
        return list(await asyncio.gather(*(item.future for item in items)))

    async def _collect(self, model: Any) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch_size:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        batch.append(await self._queue.get())  # a cancelled get loses no item
                except TimeoutError:
                    break
            batch = [item for item in batch if not item.future.done()]  # their clients went away
            if not batch:
                continue
            self.batches += 1
            self.instances += len(batch)
            try:
                results = await loop.run_in_executor(self._executor, self.run_batch, model, [i.payload for i in batch])
            except Exception as err:  # noqa: BLE001  reported to the batch's requests; the server keeps serving
                results = [err] * len(batch)
            for item, result in zip(batch, results):
                if item.future.done():
                    continue
                if isinstance(result, Exception):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)
