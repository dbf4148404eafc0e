"""What a long command shows a person on stderr: one-line messages and a live progress line.

Used by every command (training and scoring alike), so all of them look and stay quiet the same way."""
from __future__ import annotations

import sys
import time
from typing import IO


def say(msg: str, quiet: bool = False) -> None:
    """One line on stderr, flushed at once (never on stdout, which may carry a command's data)."""
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


_SAID: set[str] = set()


def say_once(key: str, msg: str) -> None:
    """say(msg) the first time `key` comes in this process (a note about a model folder, once per folder and
    kind of note, however many calls meet it)."""
    if key not in _SAID:
        _SAID.add(key)
        say(msg)


def clock(seconds: float) -> str:
    """'42 s', '3m05s', '2h07m': a duration as a person reads it (an ETA)."""
    s = max(0, round(seconds))
    return f"{s} s" if s < 60 else f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """A one-line progress display on stderr (items, items/s, percent and ETA when the total is known);
    silent when stderr is not a terminal or `enabled` is False."""

    def __init__(self, label: str, total: int | None = None, unit: str = "records", enabled: bool | None = None,
                 stream: IO[str] | None = None, every: float = 0.25):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label, self.total, self.unit, self.every = label, total, unit, every
        self.done = 0
        self.t0 = self.last = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and now - self.last >= self.every:
            self.last = now
            self._draw(now)

    def _draw(self, now: float, end: str = "") -> None:
        elapsed = max(now - self.t0, 1e-9)
        pct = f" {100 * self.done / self.total:5.1f}%" if self.total else ""
        left = (self.total - self.done) * elapsed / self.done if self.total and self.done and not end else None
        eta = f" | ETA {clock(left)}" if left is not None else ""
        self.stream.write(f"\r{self.label}:{pct} {self.done:,} {self.unit} | {self.done / elapsed:,.0f} "
                          f"{self.unit}/s | {elapsed:.1f} s{eta}   {end}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter(), end="\n")
