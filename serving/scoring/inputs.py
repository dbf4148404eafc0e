"""Input files as batches of records: FASTA (plain or gzip, streamed), a one-hot .npy (memory-mapped) or the
project's HDF5 (x_* datasets), so memory is bounded by the batch size, never by the file."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import IO, Any, Iterator

import numpy as np

from serving.fasta import FastaBlock, FastaError, read_blocks

CHUNK = 16384  # records read, validated and scored at a time (each batch is one predictor call, which ends with
# its threads waiting on the slowest: 200,000 records in calls of 4096 took ~8% longer than in one call on a 2-core
# EPYC, in calls of 16384 ~3%)
NOT_NPY = "not a readable .npy file (it does not start with the .npy magic bytes; write it with numpy.save)"


@dataclass
class Batch:
    """Consecutive input records: first (0-based index of ids[0]), ids, and either sequences (strings),
    block (FASTA records as parsed: serving.fasta.FastaBlock) or onehot (n, L, 4) / (n, 4, L) as stored."""

    first: int
    ids: list[str]
    sequences: list[str] | None = None
    onehot: np.ndarray | None = None
    block: FastaBlock | None = None


def detect_format(path: str | os.PathLike) -> str:
    """'npy', 'h5' or 'fasta' (plain or gzip), from the magic bytes; '-' (stdin) is FASTA."""
    if str(path) == "-":
        return "fasta"
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "h5"
    if str(path).lower().endswith(".npy"):  # named .npy but not one: say so, as the service does
        raise ValueError(f"{path}: {NOT_NPY}")
    return "fasta"


def fasta_batches(source: str | os.PathLike | IO[bytes], chunk: int = CHUNK, skip: int = 0) -> Iterator[Batch]:
    """Stream a FASTA (path, '-' for stdin, or binary stream) as Batches of `chunk` records (Batch.block: the
    parsed records, never one Python string per sequence). Empty records are passed on (they become rejects,
    not a stopped run). The first `skip` records are read but not returned (resume)."""
    if str(source) == "-":
        source = sys.stdin.buffer
    first, parts, held = 0, [], 0
    # Text parsed at a time: ~256 bytes per record of the chunk (200-nt records take ~220), so memory follows the
    # chunk size, not the file's.
    blocks = read_blocks(source, allow_empty=True, block_bytes=min(max(chunk * 256, 1 << 16), 1 << 23))
    try:
        for block in blocks:
            if first + len(block) <= skip:
                first += len(block)
                continue
            if first < skip:
                block, first = block.take(skip - first, len(block)), skip
            at = 0
            while at < len(block):
                take = min(chunk - held, len(block) - at)
                parts.append(block.take(at, at + take))
                at, held = at + take, held + take
                if held == chunk:
                    yield _batch(first, parts)
                    first, parts, held = first + held, [], 0
    except FastaError:
        if held:  # the records read before the problem are scored (and written) before it is raised
            yield _batch(first, parts)
        raise
    if held:
        yield _batch(first, parts)


def _batch(first: int, parts: list[FastaBlock]) -> Batch:
    block = parts[0] if len(parts) == 1 else FastaBlock(
        [h for p in parts for h in p.headers], np.concatenate([p.lines for p in parts]),
        np.concatenate([[0]] + [p.offsets[1:] + sum(len(q.data) for q in parts[:i]) for i, p in enumerate(parts)]),
        np.concatenate([p.data for p in parts]),
        None if all(p.texts is None for p in parts) else [s for p in parts for s in p.sequences()])
    return Batch(first, block.ids_and_descriptions()[0], block=block)


def open_npy(path: str | os.PathLike) -> np.ndarray:
    """A .npy file memory-mapped, never unpickled; ValueError naming the accepted shapes when it is not
    a 3-D one-hot array, or not a readable .npy at all."""
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # a client's unreadable file is bad input, whatever numpy raised
        if "Python objects" in str(exc) or "pickle" in str(exc):
            raise ValueError("object arrays (pickled Python objects) are refused; send a numeric .npy "
                             "(float32, float64, uint8 or bool)") from None
        raise ValueError(f"not a readable .npy file ({exc})") from None
    if not isinstance(x, np.ndarray):
        getattr(x, "close", lambda: None)()
        raise ValueError("expected one .npy array, got an .npz archive")
    if x.ndim != 3:
        raise ValueError(f"a one-hot array must have 3 dimensions, (N, L, 4) or (N, 4, L), got shape {x.shape}"
                         + (" (one sequence: save it as x[None])" if x.ndim == 2 else ""))
    return x


def array_batches(path: str | os.PathLike, chunk: int = CHUNK, skip: int = 0, keys: list[str] | None = None,
                  ) -> Iterator[Batch]:
    """A one-hot .npy ((N, L, 4) or (N, 4, L), memory-mapped) or HDF5 with x_* datasets ((N, 4, L), the
    project's layout; read chunk by chunk). Ids: the row number for .npy, `<key>:<row>` for HDF5.
    keys: HDF5 datasets to score (default: every x_* key, x_train, x_valid, x_test first)."""
    if detect_format(path) == "npy":
        yield from _slices(open_npy(path), "", chunk, skip, 0)
        return
    import h5py

    with h5py.File(path, "r") as fh:
        keys = h5_keys(fh, path, keys)
        offset = 0
        for key in keys:
            yield from _slices(fh[key], f"{key}:", chunk, skip, offset)
            offset += len(fh[key])


def h5_keys(fh: Any, path: str | os.PathLike, keys: list[str] | None) -> list[str]:
    """The x_* datasets to score (checked to exist), x_train, x_valid, x_test first."""
    if keys is None:
        order = {"x_train": 0, "x_valid": 1, "x_test": 2}
        keys = sorted((k for k in fh.keys() if k.startswith("x_")), key=lambda k: (order.get(k, 3), k))
    if not keys:
        raise ValueError(f"{path}: no x_* datasets (the project's HDF5 layout); keys are {list(fh.keys())}")
    for key in keys:
        if key not in fh:
            raise ValueError(f"{path}: no dataset {key!r}; keys are {list(fh.keys())}")
    return keys


def _slices(x: Any, prefix: str, chunk: int, skip: int, offset: int) -> Iterator[Batch]:
    if getattr(x, "ndim", 0) != 3:
        raise ValueError(f"one-hot array must have 3 dimensions (N, L, 4) or (N, 4, L), got shape {x.shape}")
    for start in range(max(0, skip - offset), len(x), chunk):
        stop = min(start + chunk, len(x))
        yield Batch(offset + start, [f"{prefix}{i}" for i in range(start, stop)], onehot=np.asarray(x[start:stop]))


def count_hint(path: str | os.PathLike, keys: list[str] | None = None) -> int | None:
    """The number of records in an array input (None for FASTA, which is streamed once)."""
    fmt = detect_format(path)
    if fmt == "npy":
        return int(open_npy(path).shape[0])
    if fmt == "h5":
        import h5py

        with h5py.File(path, "r") as fh:
            return sum(len(fh[k]) for k in h5_keys(fh, path, keys))
    return None
