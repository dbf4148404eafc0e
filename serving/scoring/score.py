"""Batch scoring: validate each Batch, score it with any predictor (local ONNX Runtime or a service) and
write TSV rows `id probability logit` in input order, a rejected record keeping its row with NA. Several models
(serving.model_set.ModelSet) share the reading and encoding; their rows are `id probability_<name> logit_<name> ...`.

A record that cannot be scored (wrong length, bad character, empty) gets NA and a line in the rejects
file saying why, so a run is never stopped by one record, nothing is dropped silently, and --resume works.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Iterator, TypeVar

import numpy as np

from serving.dna import (SequenceError, ascii_codes, check_onehot, check_sequences, codes_to_onehot, encode,
                         length_reason, to_codes)
from serving.predictor import PredictorLike
from serving.scoring.inputs import Batch

HEADER = "id\tprobability\tlogit\n"
LONGER_HINT = " (to score every window of a longer sequence: the scan command, or score --scan)"


T = TypeVar("T")
_END = object()


def header(predictor: Any) -> str:
    """The TSV header: HEADER for one model, `id probability_<name> logit_<name> ...` for a ModelSet."""
    columns = getattr(predictor, "columns", None)
    return HEADER if columns is None else "\t".join(["id", *columns("probability", "logit")]) + "\n"


def tsv_rows(ids: list[str], probability: np.ndarray, logit: np.ndarray) -> str:
    """Rows `id<TAB>probability<TAB>logit<LF>`, numbers as '%.7g' writes them, NA for NaN. ids: N strings without
    line breaks; probability, logit: (N,) float32, or (N, M) for M models: probability and logit of model 1,
    then of model 2, ..."""
    if np.ndim(probability) == 2:
        pairs = np.stack([probability, logit], axis=2).reshape(len(ids), -1)  # (N, 2M): p1 z1 p2 z2 ...
        cells = _g(pairs.reshape(-1))
        width = pairs.shape[1]
        return "".join(f"{i}\t" + "\t".join(cells[r * width:(r + 1) * width]) + "\n" for r, i in enumerate(ids))
    return "".join(f"{i}\t{p}\t{z}\n" for i, p, z in zip(ids, _g(probability), _g(logit)))


def _g(values: np.ndarray) -> list[str]:
    return ["NA" if v != v else "%.7g" % v for v in np.asarray(values, np.float32).tolist()]


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


def _scores(predictor: PredictorLike, ok: np.ndarray, payload: Any, how: str, rc: bool
            ) -> tuple[np.ndarray, np.ndarray]:
    """(probability, logit) float32 of a prepared batch, (n,) or (n, M) for a ModelSet, NaN where rejected."""
    shape = (len(ok), len(predictor.names)) if hasattr(predictor, "names") else (len(ok),)
    prob = np.full(shape, np.nan, np.float32)
    logit = np.full(shape, np.nan, np.float32)
    if ok.any():
        if how == "codes":
            out = predictor.predict_codes(payload, reverse_complement_average=rc)  # type: ignore[attr-defined]
        elif how == "text":
            out = predictor.predict_sequences(payload)
        else:
            out = predictor.predict_onehot(payload, reverse_complement_average=rc)
        prob[ok], logit[ok] = out["probability"], out["logit"]
    return prob, logit


def runs_elsewhere(predictor: PredictorLike) -> bool:
    """True for a predictor whose model runs off this machine's CPU cores (a service, a GPU)."""
    return bool(getattr(predictor, "remote", False)) or getattr(predictor, "device", "cpu") != "cpu"


def score_batches(predictor: PredictorLike, batches: Iterable[Batch], rc: bool = False, read_ahead: bool = False
                  ) -> Iterator[tuple[Batch, np.ndarray, np.ndarray, list[Reject]]]:
    """Score each Batch: yields (batch, probability (n,), logit (n,), rejects), NaN where rejected, in input order.
    FASTA records go to a predictor as codes where it takes them (predict_codes). read_ahead: the next batch is
    read and checked on another thread while the predictor works on this one (worth it only where the model runs
    elsewhere: on the CPU it already fills the cores); an error reading it comes out after this batch."""
    prepared = (_prepare(predictor, batch, rc) for batch in batches)
    for batch, ok, payload, rejects, how in (_one_ahead(prepared) if read_ahead else prepared):
        yield batch, *_scores(predictor, ok, payload, how, rc), rejects


def _one_ahead(items: Iterator[T]) -> Iterator[T]:
    """`items` in order, the next one produced on a worker thread while the caller uses this one."""
    with ThreadPoolExecutor(1, thread_name_prefix="bindcnn-read-ahead") as pool:
        upcoming = pool.submit(next, items, _END)
        while (item := upcoming.result()) is not _END:
            upcoming = pool.submit(next, items, _END)
            yield item


def score(predictor: PredictorLike, batches: Iterable[Batch], out: IO[str], rejects_out=None,
          rc: bool = False, progress=None, skipped: int = 0) -> Summary:
    """Score every Batch and write its rows to `out` (and its rejects to `rejects_out`, a
    serving.scoring.outputs.RejectsFile) as soon as the batch is done, in input order. Returns a Summary.
    Where the model runs elsewhere (a service, a GPU) the next batch is read meanwhile (score_batches). When this
    returns or raises, every row counted by `progress` is written and flushed."""
    summary = Summary(skipped=skipped)
    t0 = time.perf_counter()
    for batch, prob, logit, rejects in score_batches(predictor, batches, rc, read_ahead=runs_elsewhere(predictor)):
        out.write(tsv_rows(batch.ids, prob, logit))
        out.flush()
        if rejects_out is not None and rejects:
            rejects_out.write(rejects)
        if progress is not None:
            progress.update(len(batch.ids))
        summary.records += len(batch.ids)
        summary.scored += len(batch.ids) - len(rejects)
        summary.add_rejects(rejects)
    summary.seconds = time.perf_counter() - t0
    return summary
