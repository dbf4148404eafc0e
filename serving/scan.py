"""Scanning long sequences: every window of the model length L at a stride, as strided views of one
one-hot array streamed through a predictor in large batches; written as bedGraph and BED of called sites.

Coordinates. Output is BED-style: 0-based, half-open. A FASTA id `chrom:start-end` is read as a genome
region (convention `auto`: bedtools getfasta's 0-based `start`, i.e. end - start == length, or
samtools faidx's 1-based inclusive `start`, i.e. end - start + 1 == length; decided by the record's
length) and output is shifted into genome coordinates on `chrom`. Any other id is used as the chrom name
with position 0 = the first base.

bedGraph. Windows overlap (stride < L), and bedGraph intervals must not, so each window's probability
is written on the min(stride, L) bp at its centre: [start + (L - w)//2, +w). Consecutive windows tile
without gaps or overlaps; the first and last (L - w)//2 bp of a record have no value.

Short sequences (length < L): rejected, or (short="pad") padded with N (all-zero one-hot) on both sides,
the sequence centred in one window (left pad (L - n)//2); that window is reported on the whole record.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Callable, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from serving.encoding import SequenceError, codes_to_onehot, to_codes

BATCH = 4096  # windows per predictor call
SEGMENT_BP = 1 << 22  # one-hot built for at most this many bp at a time (64 MB float32): chromosomes fit
COORD_RE = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>[\d,]+)-(?P<end>[\d,]+)$")
CONVENTIONS = ("auto", "bed", "one-based", "none")


@dataclass(frozen=True)
class Region:
    """Where a record lies: chrom name and the genome 0-based coordinate of its first base."""

    chrom: str
    offset: int = 0
    note: str = ""  # why a coordinate-looking id was not used as coordinates


def parse_region(rid: str, length: int, convention: str = "auto") -> Region:
    """Region of a FASTA record from its id (see the module docstring for the conventions).

    'auto' decides from `length`: end - start == length -> 0-based start (bedtools getfasta),
    end - start + 1 == length -> 1-based start (samtools faidx); otherwise the id is kept as the chrom
    name, with a note saying why."""
    if convention not in CONVENTIONS:
        raise ValueError(f"coordinate convention must be one of {CONVENTIONS}, got {convention!r}")
    m = COORD_RE.match(rid) if convention != "none" else None
    if m is None:
        return Region(rid)
    start, end = int(m["start"].replace(",", "")), int(m["end"].replace(",", ""))
    if convention == "auto":
        if end - start == length:
            convention = "bed"
        elif end - start + 1 == length:
            convention = "one-based"
        else:
            return Region(rid, 0, f"{rid}: span {end - start} does not match the sequence length {length}; "
                                  "using the id as the chrom name (pass --coords bed|one-based to force)")
    return Region(m["chrom"], start if convention == "bed" else start - 1)


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
    Windows go to predictor.predict_onehot `batch_size` at a time, as views of x."""
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
    where = f"sequence {index}" if index is not None else "sequence"
    if n == 0:
        raise SequenceError(f"{where}: empty sequence", index)
    codes = to_codes(seq, index, predictor.alphabet)  # (n,) uint8: validates once, 1 byte per bp
    if n < L:
        if short == "reject":
            raise SequenceError(f"{where}: length {n} is shorter than the model's window {L} "
                                "(pad it with N using --short pad)", index)
        left = (L - n) // 2
        padded = np.full(L, 4, np.uint8)  # code 4 = N = all-zero one-hot
        padded[left : left + n] = codes
        out = predictor.predict_onehot(codes_to_onehot(padded)[None], reverse_complement_average=rc)
        if on_batch is not None:
            on_batch(1)
        return ScanResult(rid, n, L, stride, np.array([-left]), out["probability"], out["logit"], padded=True)
    total = n_windows(n, L, stride)
    per_segment = max(1, (SEGMENT_BP - L) // stride + 1)
    prob = np.empty(total, np.float32)
    logit = np.empty(total, np.float32)
    for i0 in range(0, total, per_segment):
        i1 = min(i0 + per_segment, total)
        lo, hi = i0 * stride, (i1 - 1) * stride + L
        x = codes_to_onehot(codes[lo:hi])  # (hi - lo, 4): the ONE array the windows view
        prob[i0:i1], logit[i0:i1] = scan_onehot(predictor, x, stride, batch_size, rc, on_batch)
    return ScanResult(rid, n, L, stride, np.arange(total, dtype=np.int64) * stride, prob, logit)


# -- calling sites --------------------------------------------------------------------------------
def call_sites(result: ScanResult, threshold: float = 0.5) -> list[tuple[int, int, float, float]]:
    """Windows with probability >= threshold, merged where they overlap or touch (bedtools merge's
    rule). Returns [(start, end, max probability, logit at that max)] in record coordinates, clipped
    to [0, length)."""
    hits = np.flatnonzero(result.probability >= threshold)
    if len(hits) == 0:
        return []
    starts = np.maximum(result.starts[hits], 0)
    ends = result.window_ends()[hits]
    # a new site begins where a window starts after the furthest end so far
    new = np.ones(len(hits), bool)
    new[1:] = starts[1:] > np.maximum.accumulate(ends)[:-1]
    groups = np.cumsum(new) - 1
    sites = []
    for g in range(groups[-1] + 1):
        members = hits[groups == g]
        best = members[np.argmax(result.probability[members])]
        sites.append((int(starts[groups == g].min()), int(ends[groups == g].max()),
                      float(result.probability[best]), float(result.logit[best])))
    return sites


# -- writers --------------------------------------------------------------------------------------
def bedgraph_track_line(name: str, description: str = "") -> str:
    return (f'track type=bedGraph name="{name}" description="{description or name}" visibility=full '
            f'autoScale=off viewLimits=0:1 color=31,119,180\n')


def bed_track_line(name: str, description: str = "") -> str:
    return f'track name="{name}" description="{description or name}" useScore=1\n'


def write_bedgraph(fh: IO[str], result: ScanResult, region: Region) -> int:
    """One bedGraph line per window: chrom, start, end (genome coordinates), probability. Returns lines."""
    lo, hi = result.bins()
    lo, hi = lo + region.offset, hi + region.offset
    chrom = region.chrom
    fh.write("".join(f"{chrom}\t{a}\t{b}\t{p:.6g}\n"
                     for a, b, p in zip(lo.tolist(), hi.tolist(), result.probability.tolist())))
    return len(lo)


def write_bed(fh: IO[str], result: ScanResult, region: Region, threshold: float) -> int:
    """BED6 of called sites: chrom, start, end, name (max probability, 4 decimals), score
    (round(1000 * max probability), 0-1000), strand '.'. Returns the number of sites."""
    sites = call_sites(result, threshold)
    fh.write("".join(f"{region.chrom}\t{a + region.offset}\t{b + region.offset}\t{p:.4f}\t{round(1000 * p)}\t.\n"
                     for a, b, p, _ in sites))
    return len(sites)


def write_windows(fh: IO[str], result: ScanResult, region: Region) -> int:
    """TSV rows chrom, start, end (the full window, clipped to the record), probability, logit."""
    lo = np.maximum(result.starts, 0) + region.offset
    hi = result.window_ends() + region.offset
    fh.write("".join(f"{region.chrom}\t{a}\t{b}\t{p:.7g}\t{z:.7g}\n" for a, b, p, z in zip(
        lo.tolist(), hi.tolist(), result.probability.tolist(), result.logit.tolist())))
    return len(lo)


WINDOWS_HEADER = "chrom\tstart\tend\tprobability\tlogit\n"


def scan_records(predictor, records: Iterator, stride: int = 1, short: str = "reject", rc: bool = False,
                 batch_size: int = BATCH, on_batch: Callable[[int], None] | None = None
                 ) -> Iterator[tuple[int, object, ScanResult | None, str]]:
    """Scan FASTA Records one by one: yields (index, record, ScanResult or None, error message)."""
    for i, rec in enumerate(records):
        try:
            yield i, rec, scan_sequence(predictor, rec.sequence, stride, short, rc, batch_size, rec.id, i,
                                        on_batch), ""
        except SequenceError as exc:
            yield i, rec, None, str(exc).split(": ", 1)[-1]
