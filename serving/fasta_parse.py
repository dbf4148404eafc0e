"""FASTA parsing of whole buffers of bytes at once (numpy finds the line breaks and headers, sequence lines are
joined by one compress), so reading runs several times faster than the model instead of per line in Python.

serving/fasta.py streams files through it. A buffer with anything unusual (non-ASCII text, whitespace inside
sequence lines) is parsed line by line instead, with the same results and the same errors (line, record).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from serving.fasta_headers import Headers

_NEWLINE, _HEADER, _COMMENT = 10, ord(">"), ord(";")
_INNER_SPACE = (b" ", b"\t", b"\x0b", b"\x0c")  # inside sequence lines: only the line-by-line parser strips them
_BLANKS = _INNER_SPACE  # in a header: stripped at its ends; an id ends at the first space or tab


class FastaError(ValueError):
    """A malformed FASTA file. line: the 1-based line at fault (None when not one line); reason: the
    problem alone; too_large: the decompressed size went past the reader's cap."""

    def __init__(self, reason: str, line: int | None = None, too_large: bool = False):
        self.reason, self.line, self.too_large = reason, line, too_large
        super().__init__(f"line {line}: {reason}" if line is not None else reason)


class FastaBlock(NamedTuple):
    """Consecutive records. headers: n header texts (after '>', stripped; a list, or serving.fasta_headers.Headers
    when none has a blank, which makes no string per record until asked); lines: (n,) 1-based header lines;
    offsets: (n + 1,) int64, record i's sequence is data[offsets[i]:offsets[i + 1]]; data: (total,) uint8, the
    sequences' characters (ASCII; a non-ASCII character is one '?' byte, so lengths count characters); texts:
    the exact sequence strings when data replaced a character, else None (strings then come from data)."""

    headers: list[str] | Headers
    lines: np.ndarray
    offsets: np.ndarray
    data: np.ndarray
    texts: list[str] | None = None

    def __len__(self) -> int:
        return len(self.headers)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def ids_and_descriptions(self) -> tuple[list[str], list[str]]:
        """Record ids (the header up to the first space or tab) and the rest of each header."""
        if isinstance(self.headers, Headers) or not any(c in "".join(self.headers) for c in " \t"):
            return self.headers, [""] * len(self.headers)  # Headers hold no blank
        ids, descs = [], []
        for header in self.headers:
            rid, _, desc = header.partition(" ")
            if "\t" in rid:
                rid, _, more = rid.partition("\t")
                desc = more + " " + desc
            ids.append(rid)
            descs.append(desc.strip())
        return ids, descs

    def sequences(self) -> list[str]:
        if self.texts is not None:
            return self.texts
        text = self.data.tobytes().decode("ascii")
        o = self.offsets.tolist()
        return [text[a:b] for a, b in zip(o[:-1], o[1:])]

    def take(self, start: int, stop: int) -> "FastaBlock":
        """Records start..stop-1 as a block (views, no copy of the data)."""
        off = self.offsets[start:stop + 1]
        return FastaBlock(self.headers[start:stop], self.lines[start:stop], off - off[0],
                          self.data[off[0]:off[-1]], None if self.texts is None else self.texts[start:stop])


def parse(buf: bytes, line0: int, allow_empty: bool) -> tuple[FastaBlock, FastaError | None, int]:
    """Parse whole lines of FASTA (LF line breaks only: serving.fasta translates CRLF and CR). line0: lines
    before buf. Returns the records complete before the first problem, that problem (None when there is none:
    text before the first header, an empty header, a record without sequence (unless allow_empty), text that is
    not UTF-8) and the number of line breaks in buf."""
    block, problem, lines = _parse(buf, line0, allow_empty)
    return block, problem, buf.count(b"\n") if lines is None else lines


def _parse(buf: bytes, line0: int, allow_empty: bool) -> tuple[FastaBlock, FastaError | None, int | None]:
    if not buf.isascii():
        try:
            buf.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = buf.count(b"\n", 0, exc.start)
            head = buf[:buf.rfind(b"\n", 0, exc.start) + 1]
            block, problem = parse_lines(head.decode("utf-8"), line0, allow_empty, open_end=True)
            problem = problem or FastaError(f"the file is not UTF-8 text ({exc.reason})", line0 + bad + 1)
            return block, problem, None
        return (*parse_lines(buf.decode("utf-8"), line0, allow_empty), None)
    if not buf:
        return _empty(), None, 0
    a = np.frombuffer(buf, np.uint8)
    nl = np.flatnonzero(a == _NEWLINE)
    ends = nl if len(a) and a[-1] == _NEWLINE else np.append(nl, len(a))
    starts = np.concatenate(([0], nl + 1))[:len(ends)]
    size = ends - starts
    first = np.where(size > 0, a[np.minimum(starts, max(len(a) - 1, 0))], 0)
    is_head = first == _HEADER
    is_seq = (size > 0) & ~is_head & (first != _COMMENT)
    keep = np.repeat(is_seq, size + 1)[:len(a)]
    keep[nl] = False
    data = a[keep]
    if any(c in buf for c in _INNER_SPACE) and any(c in data.tobytes() for c in _INNER_SPACE):
        return (*parse_lines(buf.decode("ascii"), line0, allow_empty), None)
    heads = np.flatnonzero(is_head)
    if not is_seq.any() and not len(heads):
        return _empty(), None, len(nl)
    seq_before = np.cumsum(np.where(is_seq, size, 0))  # sequence characters up to and including each line
    if (len(heads) == 0 and is_seq.any()) or (len(heads) and is_seq[:heads[0]].any()):
        at = int(np.flatnonzero(is_seq)[0])
        return _empty(), FastaError("sequence data before the first '>' header (is this FASTA?)",
                                    line0 + at + 1), 0
    headers = _headers(a, starts[heads] + 1, ends[heads])
    offsets = np.concatenate(([0], seq_before[np.append(heads[1:] - 1, len(size) - 1)] -
                              (seq_before[heads[0] - 1] if len(heads) and heads[0] else 0))).astype(np.int64)
    lines = heads + line0 + 1
    problem, n = None, len(headers)
    empty = headers.first_empty() if isinstance(headers, Headers) else headers.index("") if "" in headers else None
    if empty is not None:
        n = empty
        problem = FastaError("empty header ('>' with no id)", int(lines[n]))
    if not allow_empty:
        empty = np.flatnonzero(np.diff(offsets[:n + 1]) == 0)
        if len(empty):
            n = int(empty[0])
            problem = FastaError(f"record {_id(headers[n])!r} has no sequence", int(lines[n]))
    block = FastaBlock(headers, lines, offsets, data)
    return (block.take(0, n) if n < len(headers) else block), problem, len(nl)


def _headers(a: np.ndarray, start: np.ndarray, end: np.ndarray) -> list[str] | Headers:
    """Header texts a[start[i]:end[i]] (each followed by its line break in a), stripped: one gather, then Headers
    (no blank anywhere: nothing to strip or split off) or one decode and one split for all of them."""
    if len(end) and end[-1] == len(a):  # the last line is a header without a line break
        a = np.append(a, np.uint8(_NEWLINE))
    size = end - start + 1
    idx = np.repeat(start - np.concatenate(([0], np.cumsum(size)[:-1])), size) + np.arange(int(size.sum()))
    raw = a.take(idx, mode="clip").tobytes()
    if not any(c in raw for c in _BLANKS):
        return Headers(raw, np.cumsum(size) - 1)
    return [h.strip() for h in raw.decode("ascii").split("\n")[:-1]]


def _id(header: str) -> str:
    return header.partition(" ")[0].partition("\t")[0]


def _empty() -> FastaBlock:
    return FastaBlock([], np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.uint8))


def parse_lines(text: str, line0: int, allow_empty: bool, open_end: bool = False
                ) -> tuple[FastaBlock, FastaError | None]:
    """parse() one line at a time in Python, for text the vectorised path leaves alone (same results).
    open_end: the text stops inside the last record (before a bad line), which is then neither checked nor
    returned."""
    headers, lines, seqs, chunks = [], [], [], None
    problem = None
    for lineno, line in enumerate(text.split("\n"), start=line0 + 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            if chunks is not None:
                seqs.append("".join(chunks))
                if not seqs[-1] and not allow_empty:
                    problem = FastaError(f"record {_id(headers[-1])!r} has no sequence", lines[-1])
                    break
            header = line[1:].strip()
            if not header:
                problem = FastaError("empty header ('>' with no id)", lineno)
                break
            headers.append(header)
            lines.append(lineno)
            chunks = []
        elif chunks is None:
            problem = FastaError("sequence data before the first '>' header (is this FASTA?)", lineno)
            break
        else:
            chunks.append(line)
    else:
        if chunks is not None and not open_end:
            seqs.append("".join(chunks))
            if not seqs[-1] and not allow_empty:
                problem = FastaError(f"record {_id(headers[-1])!r} has no sequence", lines[-1])
    n = len(seqs) - (1 if problem is not None and problem.reason.endswith("has no sequence") else 0)
    headers, seqs = headers[:n], seqs[:n]
    joined = "".join(seqs)
    data = np.frombuffer(joined.encode("ascii", errors="replace"), np.uint8)
    offsets = np.concatenate(([0], np.cumsum([len(s) for s in seqs], dtype=np.int64))).astype(np.int64)
    return FastaBlock(headers, np.asarray(lines[:n], np.int64), offsets, data,
                      None if joined.isascii() else seqs), problem
