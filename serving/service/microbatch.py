"""Concurrent small requests share one model call without waiting for one another: requests that arrive while the
worker is busy queue up, and the next call takes them all (opportunistic batching; a lone request runs at once).

BentoML's adaptive batching waits to fill each batch, and for a model that needs ~50 us per sequence the waiting is
what costs (benchmarks/RESULTS.md section 4), so /predict_one batches with this instead.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable

import numpy as np

Outputs = dict[str, np.ndarray]


class MicroBatcher:
    """run(x: (N, L, 4) float32) -> {name: (N,) array} is called on the rows of every request queued since the
    last call, in arrival order and at most max_rows at a time (a larger request runs alone); each request gets
    its own rows back. The call runs on the event loop (one worker per core: the core is the model's anyway), so
    the requests read while it runs form the next batch. on_batch(rows) is told each call's size."""

    def __init__(self, run: Callable[[np.ndarray], Outputs], max_rows: int = 256,
                 on_batch: Callable[[int], None] | None = None):
        self.run, self.max_rows, self.on_batch = run, max_rows, on_batch
        self._queue: deque[tuple[np.ndarray, asyncio.Future]] = deque()
        self._scheduled = False

    async def submit(self, x: np.ndarray) -> Outputs:
        """x: (n, L, 4) float32 of one request -> its n rows of run's outputs (run's exception, if it fails)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.append((x, done))
        if not self._scheduled:  # after the requests already read in this turn of the loop have queued too
            self._scheduled = True
            loop.call_soon(self._drain)
        return await done

    def _take(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        batch = [self._queue.popleft()]
        rows = len(batch[0][0])
        while self._queue and rows + len(self._queue[0][0]) <= self.max_rows:
            batch.append(self._queue.popleft())
            rows += len(batch[-1][0])
        return batch

    def _drain(self) -> None:
        self._scheduled = False
        while self._queue:
            batch = self._take()
            live = [(x, f) for x, f in batch if not f.done()]  # a client that went away needs no answer
            if not live:
                continue
            x = live[0][0] if len(live) == 1 else np.concatenate([x for x, _ in live])
            try:
                out = self.run(x)
            except Exception as exc:  # every request of the batch gets the error (a server fault: 500)
                for _, f in live:
                    f.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(len(x))
            start = 0
            for xi, f in live:
                stop = start + len(xi)
                f.set_result({k: v[start:stop] for k, v in out.items()})
                start = stop
