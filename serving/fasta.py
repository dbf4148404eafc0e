"""Streaming FASTA reading (plain or gzip) and writing.

Records come out block by block (a few MB of text parsed at once by serving/fasta_parse.py) or one at a time;
memory is bounded by the block, never by the file; errors name the line.
"""
from __future__ import annotations

import gzip
import io
import os
import zlib
from typing import IO, Iterable, Iterator, NamedTuple

from serving.fasta_parse import FastaBlock, FastaError, parse  # noqa: F401 (FastaError's home for importers)

GZIP_MAGIC = b"\x1f\x8b"
BLOCK_BYTES = 1 << 20  # text parsed at a time: large enough for numpy to pay off, small enough for the caches


class Record(NamedTuple):  # a tuple: ~3x cheaper to make than a frozen dataclass, per record of a big file
    id: str  # the header up to the first whitespace
    sequence: str
    description: str = ""  # the rest of the header line


def _open_binary(source: str | os.PathLike | IO[bytes]) -> IO[bytes]:
    if isinstance(source, (str, os.PathLike)):
        return open(source, "rb")
    return source


def open_bytes(source: str | os.PathLike | IO[bytes], max_bytes: int | None = None) -> IO[bytes]:
    """Open a path or binary stream, transparently un-gzipping; `max_bytes` caps the decompressed size (a gzip
    bomb raises FastaError instead of filling memory or disk)."""
    raw = _open_binary(source)
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
    head = buffered.peek(2)[:2]
    stream: IO[bytes] = _gunzip(buffered) if head == GZIP_MAGIC else buffered
    if max_bytes is not None:
        stream = _CappedReader(stream, max_bytes)  # type: ignore[assignment]
    return stream


def _gunzip(stream: IO[bytes]) -> gzip.GzipFile:
    """A GzipFile reading `stream`: ISA-L's (python-isal, a dependency; ~2.8x faster than zlib on a 42 MB FASTA,
    same errors) where it imports, else the standard library's."""
    try:
        from isal import igzip
    except ImportError:  # pragma: no cover - isal is a dependency; a platform without its wheels
        return gzip.GzipFile(fileobj=stream)
    return igzip.GzipFile(fileobj=stream)


def _gzip_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged or truncated gzip stream raises (BadGzipFile is an OSError), for `except`."""
    try:
        from isal.isal_zlib import error as isal_error
    except ImportError:  # pragma: no cover
        return (EOFError, OSError, zlib.error)
    return (EOFError, OSError, zlib.error, isal_error)


def open_text(source: str | os.PathLike | IO[bytes], max_bytes: int | None = None) -> IO[str]:
    """open_bytes as UTF-8 text with universal newlines."""
    return io.TextIOWrapper(open_bytes(source, max_bytes), encoding="utf-8", errors="strict",  # type: ignore
                            newline=None)


class _CappedReader(io.RawIOBase):
    def __init__(self, inner: IO[bytes], max_bytes: int):
        self.inner, self.left, self.max_bytes = inner, max_bytes, max_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        try:
            data = self.inner.read(min(len(buf), self.left + 1))
        except _gzip_errors() as exc:
            raise FastaError(f"the file is not valid gzip or is truncated ({exc})") from exc
        if len(data) > self.left:
            raise FastaError(f"the file is larger than {self.max_bytes} bytes when uncompressed", too_large=True)
        self.left -= len(data)
        buf[: len(data)] = data
        return len(data)


def read_blocks(source: str | os.PathLike | IO[bytes], max_bytes: int | None = None, allow_empty: bool = False,
                block_bytes: int = BLOCK_BYTES) -> Iterator[FastaBlock]:
    """Yield FastaBlocks of consecutive records from a FASTA path or binary stream (gzip detected by its magic
    bytes), cut at header lines every ~block_bytes of text. Sequence lines are joined; blank lines and ';'
    comment lines are skipped. Raises FastaError (after the records before the problem) for text before the
    first header, an empty header, an empty record (unless allow_empty), text that is not UTF-8, or a gzip
    file that is damaged or truncated."""
    stream = open_bytes(source, max_bytes)
    read = _read_ahead(stream, block_bytes) if _gzipped(stream) else lambda: stream.read(block_bytes)
    line0, pending, size, held = 0, [], 0, b""
    try:
        while True:
            data = read()
            eof, chunk, held = not data, held + data, b""
            if not eof and chunk.endswith(b"\r"):  # maybe half of a CRLF: decide with the next chunk
                chunk, held = chunk[:-1], b"\r"
            if b"\r" in chunk:  # universal newlines, as text mode reads them
                chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            cut = chunk.rfind(b"\n>")  # the line break before the last header line; -1: pending's last byte
            if cut < 0 and not (pending and pending[-1].endswith(b"\n") and chunk.startswith(b">")):
                cut = -2
            if not eof and (cut < -1 or size + len(chunk) < block_bytes // 2):
                pending.append(chunk)
                size += len(chunk)
                continue
            view = memoryview(chunk)
            buf = b"".join([*pending, view if eof else view[:cut + 1]])
            pending, size = ([], 0) if eof else ([chunk[cut + 1:]], len(chunk) - cut - 1)
            block, problem, lines = parse(buf, line0, allow_empty)
            if len(block):
                yield block
            if problem is not None:
                raise problem
            if eof:
                return
            line0 += lines
    except _gzip_errors() as exc:
        raise FastaError(f"the file is not valid gzip or is truncated ({exc})") from exc


def _gzipped(stream: IO[bytes]) -> bool:
    return isinstance(stream, gzip.GzipFile) or isinstance(getattr(stream, "inner", None), gzip.GzipFile)


def _read_ahead(stream: IO[bytes], size: int):
    """A function returning the stream's next `size` bytes, read (un-gzipped) by a background thread one read
    ahead, so decompressing overlaps parsing (ISA-L and zlib release the GIL). Its errors come out of the call."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="bindcnn-gunzip")
    state = {"next": pool.submit(stream.read, size)}

    def read() -> bytes:
        data = state["next"].result()
        if data:
            state["next"] = pool.submit(stream.read, size)
        else:
            pool.shutdown(wait=False)
        return data

    return read


def read_fasta(
    source: str | os.PathLike | IO[bytes],
    max_bytes: int | None = None,
    allow_empty: bool = False,
) -> Iterator[Record]:
    """Yield Records from a FASTA path or binary stream (gzip detected by its magic bytes); see read_blocks."""
    for block in read_blocks(source, max_bytes, allow_empty):
        ids, descriptions = block.ids_and_descriptions()
        yield from map(Record, ids, block.sequences(), descriptions)


def write_fasta(records: Iterable[Record | tuple[str, str]], path: str | os.PathLike, width: int = 80) -> int:
    """Write records ((id, sequence) pairs or Records) to a FASTA file; gzip if the path ends in .gz.
    Returns the number of records written."""
    opener = gzip.open if str(path).endswith(".gz") else open
    n = 0
    with opener(path, "wt") as fh:  # type: ignore[operator]
        for rec in records:
            rid, seq = (rec.id, rec.sequence) if isinstance(rec, Record) else rec
            fh.write(f">{rid}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i : i + width] + "\n")
            n += 1
    return n
