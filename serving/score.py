"""Batch scoring: FASTA (plain or gzip, streamed in chunks), a one-hot .npy or the project's HDF5 ->
TSV (id, probability, logit) in input order, through any predictor (local ONNX Runtime or a service).

Output rows match input records one to one: a record that cannot be scored (wrong length, bad
character, empty) gets `NA` in its row and a line in the rejects file saying why, so a run is never
stopped by one record, nothing is dropped silently, and `resume` can continue an interrupted file.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Protocol

import numpy as np

from serving.encoding import SequenceError, check_onehot, codes_to_onehot, encode, to_codes
from serving.fasta import read_fasta

CHUNK = 4096  # records read, validated and scored at a time: memory is bounded by this, not the file
HEADER = "id\tprobability\tlogit\n"
REJECTS_HEADER = "record\tid\treason\n"  # record: 1-based number in the input
NA = "NA"


class PredictorLike(Protocol):
    """What scoring needs: serving.predictor.Predictor or serving.client.HttpPredictor."""

    length: int
    alphabet: str

    def predict_onehot(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]: ...

    def predict_sequences(self, sequences: list[str], reverse_complement_average: bool = False
                          ) -> dict[str, np.ndarray]: ...


@dataclass
class Reject:
    index: int  # 0-based record number in the input
    id: str
    reason: str


@dataclass
class Batch:
    """Consecutive input records: first (0-based index of ids[0]), ids, and either sequences (strings)
    or onehot (n, L, 4) / (n, 4, L) as stored."""

    first: int
    ids: list[str]
    sequences: list[str] | None = None
    onehot: np.ndarray | None = None


@dataclass
class Summary:
    records: int = 0  # rows written by this run (scored + rejected)
    scored: int = 0
    rejected: int = 0
    skipped: int = 0  # records already in the output (resume)
    seconds: float = 0.0
    rejects: list[Reject] = field(default_factory=list)  # the first MAX_KEPT, for the summary

    MAX_KEPT = 50

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


# -- input ----------------------------------------------------------------------------------------
def detect_format(path: str | os.PathLike) -> str:
    """'npy', 'h5' or 'fasta' (plain or gzip), from the magic bytes, then the file name."""
    if str(path) == "-":
        return "fasta"
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "h5"
    return "fasta"


def fasta_batches(source: str | os.PathLike | IO[bytes], chunk: int = CHUNK, skip: int = 0) -> Iterator[Batch]:
    """Stream a FASTA (path, '-' for stdin, or binary stream) as Batches of `chunk` records.
    Empty records are passed on (they become rejects, not a stopped run). The first `skip` records are
    read but not returned (resume)."""
    if str(source) == "-":
        source = sys.stdin.buffer
    ids: list[str] = []
    seqs: list[str] = []
    first = skip
    for i, rec in enumerate(read_fasta(source, allow_empty=True)):
        if i < skip:
            continue
        ids.append(rec.id)
        seqs.append(rec.sequence)
        if len(ids) == chunk:
            yield Batch(first, ids, sequences=seqs)
            first += len(ids)
            ids, seqs = [], []
    if ids:
        yield Batch(first, ids, sequences=seqs)


def array_batches(path: str | os.PathLike, chunk: int = CHUNK, skip: int = 0, keys: list[str] | None = None,
                  ) -> Iterator[Batch]:
    """A one-hot .npy ((N, L, 4) or (N, 4, L), memory-mapped) or HDF5 with x_* datasets ((N, 4, L), the
    project's layout; read chunk by chunk). Ids: the row number for .npy, `<key>:<row>` for HDF5.
    keys: HDF5 datasets to score (default: every x_* key, x_train, x_valid, x_test first)."""
    if detect_format(path) == "npy":
        x = np.load(path, mmap_mode="r", allow_pickle=False)
        yield from _slices(x, "", chunk, skip, 0)
        return
    import h5py

    with h5py.File(path, "r") as fh:
        if keys is None:
            order = {"x_train": 0, "x_valid": 1, "x_test": 2}
            keys = sorted((k for k in fh.keys() if k.startswith("x_")), key=lambda k: (order.get(k, 3), k))
        if not keys:
            raise ValueError(f"{path}: no x_* datasets (the project's HDF5 layout); keys are {list(fh.keys())}")
        offset = 0
        for key in keys:
            if key not in fh:
                raise ValueError(f"{path}: no dataset {key!r}; keys are {list(fh.keys())}")
            yield from _slices(fh[key], f"{key}:", chunk, skip, offset)
            offset += len(fh[key])


def _slices(x: Any, prefix: str, chunk: int, skip: int, offset: int) -> Iterator[Batch]:
    if getattr(x, "ndim", 0) != 3:
        raise ValueError(f"one-hot array must have 3 dimensions (N, L, 4) or (N, 4, L), got shape {x.shape}")
    for start in range(max(0, skip - offset), len(x), chunk):
        stop = min(start + chunk, len(x))
        yield Batch(offset + start, [f"{prefix}{i}" for i in range(start, stop)], onehot=np.asarray(x[start:stop]))


# -- validation -----------------------------------------------------------------------------------
def prepare_sequences(batch: Batch, length: int, alphabet: str) -> tuple[np.ndarray, np.ndarray, list[Reject]]:
    """Validate a Batch of strings. Returns (ok: (n,) bool, x: (ok.sum(), L, 4) float32, rejects).
    One vectorised encode when the chunk is clean; per-record checks only for a chunk with bad records."""
    seqs = batch.sequences or []
    ok = np.array([len(s) == length for s in seqs], dtype=bool)
    rejects: list[Reject] = []
    for i in np.flatnonzero(~ok):
        n = len(seqs[i])
        why = "empty sequence" if n == 0 else (
            f"length {n}, the model expects {length} (use --scan for longer sequences)")
        rejects.append(Reject(batch.first + int(i), batch.ids[i], why))
    good = [s for s, keep in zip(seqs, ok) if keep]
    if not good:
        return ok, np.zeros((0, length, 4), np.float32), rejects
    try:
        return ok, encode(good, length, alphabet), rejects
    except SequenceError:
        pass
    codes = []
    for i in np.flatnonzero(ok):
        try:
            codes.append(to_codes(seqs[i], batch.first + int(i), alphabet))
        except SequenceError as exc:
            ok[i] = False
            reason = str(exc).split(": ", 1)[-1]  # drop "sequence N: "; the index is its own column
            rejects.append(Reject(batch.first + int(i), batch.ids[i], reason))
    rejects.sort(key=lambda r: r.index)
    x = codes_to_onehot(np.stack(codes)) if codes else np.zeros((0, length, 4), np.float32)
    return ok, x, rejects


def prepare_onehot(batch: Batch, length: int) -> tuple[np.ndarray, np.ndarray, list[Reject]]:
    """Validate a Batch of one-hot rows (serving.encoding.check_onehot, row by row only if the chunk
    fails). Returns (ok: (n,) bool, x: (ok.sum(), L, 4) float32, rejects)."""
    x = batch.onehot
    assert x is not None
    try:
        return np.ones(len(x), bool), check_onehot(x, length), []
    except ValueError:
        pass
    ok = np.ones(len(x), bool)
    rows, rejects = [], []
    for i in range(len(x)):
        try:
            rows.append(check_onehot(x[i : i + 1], length))
        except ValueError as exc:
            ok[i] = False
            rejects.append(Reject(batch.first + i, batch.ids[i], str(exc).replace("sequence 0: ", "")))
    return ok, (np.concatenate(rows) if rows else np.zeros((0, length, 4), np.float32)), rejects


# -- scoring --------------------------------------------------------------------------------------
def score_batches(predictor: PredictorLike, batches: Iterator[Batch], rc: bool = False
                  ) -> Iterator[tuple[Batch, np.ndarray, np.ndarray, list[Reject]]]:
    """Score each Batch: yields (batch, probability (n,), logit (n,), rejects), NaN where rejected."""
    for batch in batches:
        if batch.sequences is not None:
            ok, x, rejects = prepare_sequences(batch, predictor.length, predictor.alphabet)
        else:
            ok, x, rejects = prepare_onehot(batch, predictor.length)
        prob = np.full(len(ok), np.nan, np.float32)
        logit = np.full(len(ok), np.nan, np.float32)
        if len(x):
            if batch.sequences is not None and getattr(predictor, "prefers_strings", False) and not rc:
                out = predictor.predict_sequences([s for s, k in zip(batch.sequences, ok) if k])
            else:
                out = predictor.predict_onehot(x, reverse_complement_average=rc)
            prob[ok], logit[ok] = out["probability"], out["logit"]
        yield batch, prob, logit, rejects


def format_rows(ids: list[str], prob: np.ndarray, logit: np.ndarray) -> str:
    """TSV rows `id probability logit` (7 significant digits; NA where NaN)."""
    lines = []
    for rid, p, z in zip(ids, prob.tolist(), logit.tolist()):
        if p != p:  # NaN: rejected
            lines.append(f"{rid}\t{NA}\t{NA}\n")
        else:
            lines.append(f"{rid}\t{p:.7g}\t{z:.7g}\n")
    return "".join(lines)


def score(predictor: PredictorLike, batches: Iterator[Batch], out: IO[str], rejects_out: IO[str] | None = None,
          rc: bool = False, progress: "Progress | None" = None, skipped: int = 0) -> Summary:
    """Score every Batch and write its rows to `out` (and its rejects to `rejects_out`) as soon as the
    batch is done, in input order. Writes no header (see open_output). Returns a Summary."""
    summary = Summary(skipped=skipped)
    t0 = time.perf_counter()
    for batch, prob, logit, rejects in score_batches(predictor, batches, rc):
        out.write(format_rows(batch.ids, prob, logit))
        out.flush()
        if rejects_out is not None and rejects:
            rejects_out.write("".join(f"{r.index + 1}\t{r.id}\t{r.reason}\n" for r in rejects))
            rejects_out.flush()
        summary.records += len(batch.ids)
        summary.rejected += len(rejects)
        summary.scored += len(batch.ids) - len(rejects)
        summary.rejects.extend(rejects[: max(0, Summary.MAX_KEPT - len(summary.rejects))])
        if progress is not None:
            progress.update(len(batch.ids))
    summary.seconds = time.perf_counter() - t0
    return summary


# -- output files, resume -------------------------------------------------------------------------
def rows_done(path: str | os.PathLike, header: str = HEADER) -> int:
    """Complete data rows already in an output TSV (for resume). A trailing partial line (a run killed
    mid-write) is cut off so the file can be appended to."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as fh:
        data = fh.read()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            fh.truncate(complete)
    lines = data[:complete].count(b"\n")
    return max(0, lines - (1 if data.startswith(header.encode()) else 0))


def open_output(path: str | os.PathLike | None, header: str, append: bool) -> IO[str]:
    """stdout for None or '-'; otherwise the file, appended to (resume) or created with its header."""
    if path is None or str(path) == "-":
        sys.stdout.write(header)
        return sys.stdout
    exists = append and Path(path).exists() and Path(path).stat().st_size > 0
    fh = open(path, "a" if append else "w", encoding="utf-8", newline="\n")
    if not exists:
        fh.write(header)
    return fh


# -- progress -------------------------------------------------------------------------------------
class Progress:
    """A one-line progress display on stderr (records, records/s, percent when the total is known);
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
        self.stream.write(f"\r{self.label}:{pct} {self.done:,} {self.unit} | {self.done / elapsed:,.0f} "
                          f"{self.unit}/s | {elapsed:.1f} s   {end}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter(), end="\n")


def count_hint(path: str | os.PathLike, keys: list[str] | None = None) -> int | None:
    """The number of records in an array input (None for FASTA, which is streamed once)."""
    fmt = detect_format(path)
    if fmt == "npy":
        return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
    if fmt == "h5":
        import h5py

        with h5py.File(path, "r") as fh:
            return sum(len(fh[k]) for k in (keys or [k for k in fh.keys() if k.startswith("x_")]) if k in fh)
    return None


def reject_summary(summary: Summary, rejects_path: str | None, limit: int = 10,
                   note: str = "NA in the output") -> str:
    """A person-readable summary of the rejected records (the first `limit`)."""
    lines = [f"{summary.rejected:,} record(s) could not be scored ({note})"
             + (f"; all listed in {rejects_path}" if rejects_path else "") + ":"]
    for r in summary.rejects[:limit]:
        lines.append(f"  record {r.index + 1} ({r.id}): {r.reason}")
    if summary.rejected > limit:
        lines.append(f"  ... and {summary.rejected - limit:,} more")
    return "\n".join(lines)

