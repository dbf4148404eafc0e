"""Scanning long sequences: every window of the model length L at a stride, and sites called from the scores.
With an in-process predictor whose model folder has a scan graph, the windows go through serving.engine (the
convolution computed once per base); otherwise (a service's client, an older model folder) they are strided views of
one one-hot array streamed through the predictor in large batches. Both give each window's score alone.

Coordinates are BED-style (0-based, half-open); a record's genome place comes from serving.scoring.regions.
bedGraph bins: windows overlap (stride < L) and bedGraph intervals must not, so each window's probability
belongs to the min(stride, L) bp at its centre: [start + (L - w)//2, +w); consecutive windows tile.
Short sequences (length < L): rejected, or (short="pad") padded with N on both sides, the sequence centred
in one window (left pad (L - n)//2); that window is reported on the whole record.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from serving.dna import SequenceError, codes_to_onehot, to_codes
from serving.engine import engine_for
from serving.scoring.regions import Region

BATCH = 4096  # windows per predictor call
SEGMENT_BP = 1 << 22  # one-hot built for at most this many bp at a time (64 MB float32): chromosomes fit


def n_windows(length: int, window: int, stride: int = 1) -> int:
    """Number of windows of `window` bp at `stride` in a sequence: (length - window) // stride + 1."""
    return (length - window) // stride + 1 if length >= window else 0


def windows(x: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """x: (n, 4) one-hot -> (W, window, 4) read-only strided VIEW (no copy), W = n_windows(n, window, stride)."""
    return sliding_window_view(x, (window, x.shape[1]))[::stride, 0]


def scan_onehot(predictor, x: np.ndarray, stride: int = 1, batch_size: int = BATCH, rc: bool = False,
                on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Score every window of one one-hot array x: (n, 4), n >= L.

    Returns (probability (W,), logit (W,)) float32 for window starts 0, stride, 2*stride, ...
    Through the predictor's scan engine when it has one; else windows go to predictor.predict_onehot `batch_size`
    at a time, as views of x."""
    engine = engine_for(predictor)
    if engine is not None:
        return engine.scan_onehot(x, stride, rc, on_batch)
    view = windows(x, predictor.length, stride)
    prob = np.empty(len(view), np.float32)
    logit = np.empty(len(view), np.float32)
    for i in range(0, len(view), batch_size):
        out = predictor.predict_onehot(view[i : i + batch_size], reverse_complement_average=rc)
        prob[i : i + batch_size] = out["probability"]
        logit[i : i + batch_size] = out["logit"]
        if on_batch is not None:
            on_batch(min(batch_size, len(view) - i))
    return prob, logit


@dataclass
class ScanResult:
    """Scores of every window of one record. starts: (W,) window starts in record coordinates
    (negative when padded); probability, logit: (W,) float32."""

    id: str
    length: int  # of the record
    window: int  # the model's L
    stride: int
    starts: np.ndarray
    probability: np.ndarray
    logit: np.ndarray
    padded: bool = False

    def bins(self) -> tuple[np.ndarray, np.ndarray]:
        """bedGraph intervals in record coordinates: (start (W,), end (W,)), see the module docstring."""
        if self.padded:
            return np.array([0]), np.array([self.length])
        w = min(self.stride, self.window)
        lo = self.starts + (self.window - w) // 2
        return lo, lo + w

    def window_ends(self) -> np.ndarray:
        return np.minimum(self.starts + self.window, self.length)

    def spans(self, region: Region = Region("")) -> tuple[np.ndarray, np.ndarray]:
        """Each window's (start (W,), end (W,)) in genome coordinates: the full window clipped to the record
        (a padded window covers the whole record), shifted by the region's offset."""
        return np.maximum(self.starts, 0) + region.offset, self.window_ends() + region.offset


def scan_sequence(predictor, seq: str, stride: int = 1, short: str = "reject", rc: bool = False,
                  batch_size: int = BATCH, rid: str = "sequence", index: int | None = None,
                  on_batch: Callable[[int], None] | None = None) -> ScanResult:
    """Scan one DNA string of any length with a predictor-like object (.length, .alphabet,
    .predict_onehot): the call an HTTP endpoint makes for one long sequence.

    Raises SequenceError for a bad character (naming index and position), an empty sequence, or a
    sequence shorter than L when short='reject'; short='pad' pads it with N (module docstring)."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if short not in ("pad", "reject"):
        raise ValueError(f"short must be 'pad' or 'reject', got {short!r}")
    L, n = predictor.length, len(seq)
    if n == 0:
        raise SequenceError("empty sequence", index)
    codes = to_codes(seq, index, predictor.alphabet)  # (n,) uint8: validates once, 1 byte per bp
    if n < L:
        if short == "reject":
            raise SequenceError(f"length {n} is shorter than the model's window {L}; pad it with N "
                                "(short=pad) to score it", index)
        left = (L - n) // 2
        padded = np.full(L, 4, np.uint8)  # code 4 = N = all-zero one-hot
        padded[left : left + n] = codes
        out = predictor.predict_onehot(codes_to_onehot(padded)[None], reverse_complement_average=rc)
        if on_batch is not None:
            on_batch(1)
        return ScanResult(rid, n, L, stride, np.array([-left]), out["probability"], out["logit"], padded=True)
    prob, logit = scan_codes(predictor, codes, stride, batch_size, rc, on_batch)
    return ScanResult(rid, n, L, stride, np.arange(len(prob), dtype=np.int64) * stride, prob, logit)


def scan_codes(predictor, codes: np.ndarray, stride: int = 1, batch_size: int = BATCH, rc: bool = False,
               on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Score every window of codes: (n,) uint8 (serving.dna: 0-3 ACGT, 4 N), n >= L -> (probability (W,), logit
    (W,)) float32, W = n_windows(n, L, stride). The one-hot is built SEGMENT_BP at a time (the scan engine: a run)."""
    engine = engine_for(predictor)
    if engine is not None:
        return engine.scan_codes(codes, stride, rc, on_batch)
    L = predictor.length
    total = n_windows(len(codes), L, stride)
    per_segment = max(1, (SEGMENT_BP - L) // stride + 1)
    prob = np.empty(total, np.float32)
    logit = np.empty(total, np.float32)
    for i0 in range(0, total, per_segment):
        i1 = min(i0 + per_segment, total)
        lo, hi = i0 * stride, (i1 - 1) * stride + L
        x = codes_to_onehot(codes[lo:hi])  # (hi - lo, 4): the ONE array the windows view
        prob[i0:i1], logit[i0:i1] = scan_onehot(predictor, x, stride, batch_size, rc, on_batch)
    return prob, logit


# -- calling sites --------------------------------------------------------------------------------
def call_sites(result: ScanResult, threshold: float = 0.5, region: Region | None = None) -> list[dict]:
    """Windows with probability >= threshold, merged where they overlap or touch (bedtools merge's
    rule). Returns [{chrom, start, end, probability (the max), logit (at that max)}], clipped to the record
    and in genome coordinates when a region is given (else record coordinates, chrom = the record id)."""
    region = region or Region(result.id)
    hits = np.flatnonzero(result.probability >= threshold)
    if len(hits) == 0:
        return []
    starts, ends = (v[hits] for v in result.spans(region))
    # a new site begins where a window starts after the furthest end so far
    new = np.ones(len(hits), bool)
    new[1:] = starts[1:] > np.maximum.accumulate(ends)[:-1]
    groups = np.cumsum(new) - 1
    sites = []
    for g in range(groups[-1] + 1):
        members = hits[groups == g]
        best = members[np.argmax(result.probability[members])]
        sites.append({"chrom": region.chrom, "start": int(starts[groups == g].min()),
                      "end": int(ends[groups == g].max()), "probability": float(result.probability[best]),
                      "logit": float(result.logit[best])})
    return sites


def result_dict(result: ScanResult, region: Region, threshold: float) -> dict[str, Any]:
    """One scanned record as the service answers it: every window's genome span and scores, and the sites."""
    lo, hi = result.spans(region)
    return {"id": result.id, "chrom": region.chrom, "offset": region.offset, "length": result.length,
            "window": result.window, "stride": result.stride, "padded": result.padded,
            "start": lo.tolist(), "end": hi.tolist(),
            "probability": result.probability.tolist(), "logit": result.logit.tolist(),
            "sites": call_sites(result, threshold, region)}


def scan_records(predictor, records: Iterator, stride: int = 1, short: str = "reject", rc: bool = False,
                 batch_size: int = BATCH, on_batch: Callable[[int], None] | None = None
                 ) -> Iterator[tuple[int, object, ScanResult | None, str]]:
    """Scan FASTA Records one by one: yields (index, record, ScanResult or None, error message)."""
    for i, rec in enumerate(records):
        try:
            yield i, rec, scan_sequence(predictor, rec.sequence, stride, short, rc, batch_size, rec.id, i,
                                        on_batch), ""
        except SequenceError as exc:
            yield i, rec, None, exc.reason
