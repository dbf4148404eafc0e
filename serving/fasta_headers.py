"""FASTA header texts kept as one bytes object until strings are asked for: scoring a FASTA file then makes no Python
string per record (200,000 of them took ~30 ms of a ~1.3 s score loop, mostly fresh memory for Python's allocator).

A Headers reads like a list of str; serving/fasta_parse.py makes them, serving/scoring/tsv_text.py writes them.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Iterator

import numpy as np


class Headers(Sequence):
    """n ASCII header texts without blanks. text: each one followed by b"\\n"; ends: (n,) int64 positions of those
    line breaks in text. Strings are made on first use (strings(), iteration) or one at a time (headers[i])."""

    __slots__ = ("text", "ends", "_strings")

    def __init__(self, text: bytes, ends: np.ndarray):
        self.text, self.ends = text, ends
        self._strings: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ends)

    def strings(self) -> list[str]:
        if self._strings is None:
            self._strings = self.text.decode("ascii").split("\n")[:-1]
        return self._strings

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            return self.take(start, stop) if step == 1 else self.strings()[i]
        if self._strings is not None:
            return self._strings[i]
        i = range(len(self))[i]  # negative indices, IndexError
        return self.text[int(self.ends[i - 1]) + 1 if i else 0:int(self.ends[i])].decode("ascii")

    def __iter__(self) -> Iterator[str]:
        return iter(self.strings())

    def __contains__(self, item) -> bool:
        return item in self.strings()

    def index(self, item, *args) -> int:
        return self.strings().index(item, *args)

    def __eq__(self, other) -> bool:
        if isinstance(other, (Headers, list)):
            return self.strings() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.strings()!r})"

    def first_empty(self) -> int | None:
        """The index of the first empty header, or None."""
        empty = np.flatnonzero(np.diff(self.ends, prepend=-1) == 1)
        return int(empty[0]) if len(empty) else None

    def take(self, start: int, stop: int) -> "Headers":
        """Headers start..stop-1 (one bytes slice)."""
        if stop <= start:
            return Headers(b"", np.zeros(0, np.int64))
        a = int(self.ends[start - 1]) + 1 if start else 0
        return Headers(self.text[a:int(self.ends[stop - 1]) + 1], self.ends[start:stop] - a)

    @staticmethod
    def concat(parts: list["Headers"]) -> "Headers":
        at = np.cumsum([0] + [len(p.text) for p in parts[:-1]])
        return Headers(b"".join(p.text for p in parts),
                       np.concatenate([p.ends + a for p, a in zip(parts, at)]) if parts else np.zeros(0, np.int64))
