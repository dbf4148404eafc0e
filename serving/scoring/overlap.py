"""Batch scoring's Python work overlapped with the model: the next batches are read and checked on one thread and
finished rows are written on another while ONNX Runtime (or the service) computes; ONNX Runtime releases the GIL.
With an in-process predictor that takes each batch on its own threads first (serving.scoring.score), rows are
written by the scoring thread itself in that time instead (WriteBetween): no third thread on cores the model fills.

Order is kept: items come out of read_ahead in input order, WriteBehind runs its calls one at a time in order, and
an error in either comes out where the serial code would have raised it.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
_END = object()


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield `items`, produced by a background thread at most `depth` ahead; an exception raised while producing
    comes out after the items before it. Closing the iterator early stops the thread at its next item."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, _END))
        except BaseException as exc:  # handed to the consumer, raised there
            put((False, exc))

    thread = threading.Thread(target=produce, name="bindcnn-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _END:
                return
            yield item
    finally:
        stop.set()


class WriteBehind:
    """Runs submitted calls on one background thread, one at a time and in order; submit() first waits for the
    previous call, so at most one is pending. wait() re-raises a call's exception."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="bindcnn-write")
        self.pending: Future | None = None

    def submit(self, fn: Callable[..., Any], *args) -> None:
        self.wait()
        self.pending = self.pool.submit(fn, *args)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self, quiet: bool = False) -> None:
        """Wait for the pending call (its error is dropped when quiet: another error is on its way)."""
        try:
            self.wait()
        except Exception:
            if not quiet:
                raise
        finally:
            self.pool.shutdown()


class WriteBetween:
    """WriteBehind's interface for scoring that hands batches over (serving.scoring.score._handed_over): submitted
    calls wait until run_pending(), which scoring calls while the model computes the next batch, or close()."""

    def __init__(self) -> None:
        self.pending: list[tuple[Callable[..., Any], tuple]] = []

    def submit(self, fn: Callable[..., Any], *args) -> None:
        self.pending.append((fn, args))

    def run_pending(self) -> None:
        while self.pending:
            fn, args = self.pending.pop(0)
            fn(*args)

    def close(self, quiet: bool = False) -> None:
        """Run what is pending (its error dropped when quiet: another error is on its way)."""
        try:
            self.run_pending()
        except Exception:
            if not quiet:
                raise
