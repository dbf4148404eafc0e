"""Batch scoring: validate each Batch, score it with any predictor (local ONNX Runtime or a service) and
write TSV rows `id probability logit` in input order, a rejected record keeping its row with NA.

A record that cannot be scored (wrong length, bad character, empty) gets NA and a line in the rejects
file saying why, so a run is never stopped by one record, nothing is dropped silently, and --resume works.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import IO, Any, Iterator

import numpy as np

from serving.dna import (SequenceError, ascii_codes, check_onehot, check_sequences, codes_to_onehot, encode,
                         length_reason, to_codes)
from serving.predictor import Pending, PredictorLike
from serving.scoring.inputs import Batch
from serving.scoring.overlap import WriteBehind, WriteBetween, read_ahead
from serving.scoring.tsv_text import tsv_rows

HEADER = "id\tprobability\tlogit\n"
LONGER_HINT = " (to score every window of a longer sequence: the scan command, or score --scan)"


@dataclass
class Reject:
    index: int  # 0-based record number in the input
    id: str
    reason: str


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

    def add_rejects(self, rejects: list[Reject]) -> None:
        self.rejected += len(rejects)
        self.rejects.extend(rejects[: max(0, self.MAX_KEPT - len(self.rejects))])


def prepare_sequences(batch: Batch, length: int, alphabet: str, onehot: bool = True
                      ) -> tuple[np.ndarray, np.ndarray | None, list[Reject]]:
    """Validate a Batch of strings. Returns (ok: (n,) bool, x: (ok.sum(), L, 4) float32 or None when
    onehot=False (validation only), rejects). One vectorised pass when the chunk is clean; per-record
    checks only for a chunk with bad records."""
    seqs = batch.sequences or []
    ok = np.array([len(s) == length for s in seqs], dtype=bool)
    rejects = [Reject(batch.first + int(i), batch.ids[i], length_reason(len(seqs[i]), length)
                      + (LONGER_HINT if len(seqs[i]) > length else "")) for i in np.flatnonzero(~ok)]
    good = [s for s, keep in zip(seqs, ok) if keep]
    empty = np.zeros((0, length, 4), np.float32) if onehot else None
    if not good:
        return ok, empty, rejects
    try:
        if not onehot:
            check_sequences(good, length, alphabet)
            return ok, None, rejects
        return ok, encode(good, length, alphabet), rejects
    except SequenceError:
        pass
    codes = []
    for i in np.flatnonzero(ok):
        try:
            codes.append(to_codes(seqs[i], batch.first + int(i), alphabet))
        except SequenceError as exc:
            ok[i] = False
            rejects.append(Reject(batch.first + int(i), batch.ids[i], exc.reason))
    rejects.sort(key=lambda r: r.index)
    if not onehot:
        return ok, None, rejects
    return ok, (codes_to_onehot(np.stack(codes)) if codes else empty), rejects


def prepare_block(batch: Batch, length: int, alphabet: str) -> tuple[np.ndarray, np.ndarray, list[Reject]]:
    """Validate a Batch of parsed FASTA records (Batch.block) without one Python string per record. Returns
    (ok: (n,) bool, codes: (ok.sum(), L) uint8 (0-3, 4 = N), rejects); the reasons are prepare_sequences'."""
    block = batch.block
    assert block is not None
    sizes = block.lengths
    ok = sizes == length
    rejects = [Reject(batch.first + int(i), batch.ids[i], length_reason(int(sizes[i]), length)
                      + (LONGER_HINT if sizes[i] > length else "")) for i in np.flatnonzero(~ok)]
    if ok.all():
        codes = ascii_codes(block.data, alphabet).reshape(len(ok), length)
    else:
        rows = block.offsets[:-1][ok]
        codes = ascii_codes(block.data.take(rows[:, None] + np.arange(length)).reshape(-1), alphabet)
        codes = codes.reshape(len(rows), length)
    if codes.size and codes.max() == 255:  # max(): one fast pass; the rows only when something is wrong
        bad = (codes == 255).any(axis=1)
        good = np.flatnonzero(ok)
        texts = block.sequences()
        for j in np.flatnonzero(bad):
            i = int(good[j])
            try:
                to_codes(texts[i], batch.first + i, alphabet)
            except SequenceError as exc:
                rejects.append(Reject(batch.first + i, batch.ids[i], exc.reason))
            ok[i] = False
        codes = codes[~bad]
        rejects.sort(key=lambda r: r.index)
    return ok, codes, rejects


def prepare_onehot(batch: Batch, length: int) -> tuple[np.ndarray, np.ndarray, list[Reject]]:
    """Validate a Batch of one-hot rows (serving.dna.check_onehot, row by row only if the chunk
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


def _prepare(predictor: PredictorLike, batch: Batch, rc: bool) -> tuple[Batch, np.ndarray, Any, list[Reject], str]:
    """Validate a batch for `predictor`: (batch, ok (n,), payload, rejects, how), how in "codes" (payload (k, L)
    uint8), "text" (the valid strings, for a predictor that prefers strings) or "onehot" ((k, L, 4) float32)."""
    if batch.block is not None:
        ok, codes, rejects = prepare_block(batch, predictor.length, predictor.alphabet)
        if hasattr(predictor, "predict_codes"):
            return batch, ok, codes, rejects, "codes"
        return batch, ok, codes_to_onehot(codes), rejects, "onehot"
    as_text = batch.sequences is not None and getattr(predictor, "prefers_strings", False) and not rc
    if batch.sequences is not None:
        ok, x, rejects = prepare_sequences(batch, predictor.length, predictor.alphabet, onehot=not as_text)
        if as_text:
            return batch, ok, [s for s, k in zip(batch.sequences, ok) if k], rejects, "text"
    else:
        ok, x, rejects = prepare_onehot(batch, predictor.length)
    return batch, ok, x, rejects, "onehot"


def _scores(predictor: PredictorLike, ok: np.ndarray, payload: Any, how: str, rc: bool,
            pending: Pending | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(probability (n,), logit (n,)) float32 of a prepared batch, NaN where rejected; pending: its codes already
    started (Predictor.start_codes)."""
    prob = np.full(len(ok), np.nan, np.float32)
    logit = np.full(len(ok), np.nan, np.float32)
    if ok.any():
        if pending is not None:
            out = pending.result()
        elif how == "codes":
            out = predictor.predict_codes(payload, reverse_complement_average=rc)  # type: ignore[attr-defined]
        elif how == "text":
            out = predictor.predict_sequences(payload)
        else:
            out = predictor.predict_onehot(payload, reverse_complement_average=rc)
        prob[ok], logit[ok] = out["probability"], out["logit"]
    return prob, logit


def score_batches(predictor: PredictorLike, batches: Iterator[Batch], rc: bool = False, overlap: bool = False,
                  meanwhile: Callable[[], None] | None = None
                  ) -> Iterator[tuple[Batch, np.ndarray, np.ndarray, list[Reject]]]:
    """Score each Batch: yields (batch, probability (n,), logit (n,), rejects), NaN where rejected. FASTA
    records go to a predictor as codes where it takes them (predict_codes). overlap: read and validate the next
    batches on another thread while this one is scored (serving.scoring.overlap); without it, a predictor with
    start_codes gets each batch before this thread reads the next one, then calls meanwhile() (see _handed_over)."""
    prepared = (_prepare(predictor, batch, rc) for batch in batches)
    if overlap:
        prepared = read_ahead(prepared, depth=1)
    elif hasattr(predictor, "start_codes"):
        yield from _handed_over(predictor, prepared, rc, meanwhile)
        return
    for batch, ok, payload, rejects, how in prepared:
        yield batch, *_scores(predictor, ok, payload, how, rc), rejects


def _handed_over(predictor: Any, prepared: Iterator[tuple], rc: bool, meanwhile: Callable[[], None] | None
                 ) -> Iterator[tuple[Batch, np.ndarray, np.ndarray, list[Reject]]]:
    """score_batches for an in-process predictor: a batch's codes start on the model's other threads; this thread
    reads and validates the next batch and starts it too (queued behind, so those threads go on to it without
    waiting), runs meanwhile() (score writes the rows done), then helps finish the first. Every core stays busy
    without a third thread competing for them (read_ahead was no faster on 2 cores). An error reading the next
    batch is raised after this batch's rows, where the serial loop raises it."""
    def start(item: tuple | None) -> tuple | None:
        if item is None:
            return None
        _, ok, payload, _, how = item
        return item, (predictor.start_codes(payload, rc) if how == "codes" and ok.any() else None)

    current = start(next(prepared, None))
    while current is not None:
        (batch, ok, payload, rejects, how), pending = current
        error = None
        try:
            upcoming = start(next(prepared, None))
        except Exception as exc:  # noqa: BLE001 - raised below, after this batch's rows
            upcoming, error = None, exc
        if meanwhile is not None:
            meanwhile()
        yield batch, *_scores(predictor, ok, payload, how, rc, pending), rejects
        if error is not None:
            raise error
        current = upcoming


def score(predictor: PredictorLike, batches: Iterator[Batch], out: IO[str], rejects_out=None,
          rc: bool = False, progress=None, skipped: int = 0) -> Summary:
    """Score every Batch and write its rows to `out` (and its rejects to `rejects_out`, a
    serving.scoring.outputs.RejectsFile) as soon as the batch is done, in input order. Returns a Summary.
    Writing (and, for a remote predictor, reading ahead) overlaps the model (serving.scoring.overlap); when this
    returns or raises, every row counted by `progress` is written and flushed."""
    summary = Summary(skipped=skipped)
    t0 = time.perf_counter()
    # Reading ahead pays where the model runs elsewhere (a service, a GPU); on the CPU the model already uses every
    # core, and a predictor that takes batches on its own threads (start_codes) leaves this thread the reading and
    # the writing while it computes (score_batches).
    elsewhere = getattr(predictor, "remote", False) or getattr(predictor, "device", "cpu") != "cpu"
    handed_over = not elsewhere and hasattr(predictor, "start_codes")
    writer = WriteBetween() if handed_over else WriteBehind()

    def write(batch: Batch, prob: np.ndarray, logit: np.ndarray, rejects: list[Reject]) -> None:
        out.write(tsv_rows(batch.ids, prob, logit))
        out.flush()
        if rejects_out is not None and rejects:
            rejects_out.write(rejects)
        if progress is not None:
            progress.update(len(batch.ids))

    try:
        for batch, prob, logit, rejects in score_batches(predictor, batches, rc, overlap=elsewhere,
                                                         meanwhile=writer.run_pending if handed_over else None):
            writer.submit(write, batch, prob, logit, rejects)
            summary.records += len(batch.ids)
            summary.scored += len(batch.ids) - len(rejects)
            summary.add_rejects(rejects)
        writer.close()
    except BaseException:
        writer.close(quiet=True)
        raise
    summary.seconds = time.perf_counter() - t0
    return summary
