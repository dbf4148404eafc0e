"""Training data from a user's ChIP-seq peaks (`bindcnn peaks`): summit windows as positives, genomic windows that
overlap no peak as negatives, matched to the positives' GC distribution per split (the chrombpnet approach),
optionally dinucleotide shuffles too, split by chromosome. The genome is read through serving.genome (pyfaidx).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from serving.console import say
from serving.dna import codes_to_onehot
from serving.genome import Genome
from serving.intervals import Interval, LineReject, read_intervals
from serving.shuffle import shuffle_codes
from training.datasets.h5 import SPLITS, Dataset, DatasetError

# DeepSEA's held-out chromosomes (Zhou & Troyanskaya 2015, Nat Methods 12:931): chr7 validation, chr8 + chr9 test.
DEFAULT_VALID_CHROMS = ("chr7",)
DEFAULT_TEST_CHROMS = ("chr8", "chr9")
GC_BINS = 50  # GC matching in bins 0.02 wide
BLOCK = 1 << 22  # bp of a chromosome read at a time while tiling candidate negatives


class Window(NamedTuple):
    """One row of the dataset: where it came from (a shuffle keeps its positive's place)."""

    chrom: str
    start: int
    end: int
    kind: str  # summit | genomic | shuffle
    label: int
    split: str


def _split_of(genome: Genome, valid: list[str], test: list[str]) -> dict[str, str]:
    """{genome chromosome: split}; names go through Genome.resolve; an unknown or doubly named one is an error."""
    split = dict.fromkeys(genome.sizes, "train")
    for option, names, name in (("--valid-chroms", valid, "valid"), ("--test-chroms", test, "test")):
        for c in names:
            g = genome.resolve(c)
            if g is None:
                raise DatasetError(f"{option}: {genome.unknown(c)}; name the held-out chromosomes with "
                                   "--valid-chroms and --test-chroms")
            if split[g] != "train":
                raise DatasetError(f"{c} is named as both a validation and a test chromosome")
            split[g] = name
    return split


def _merged(intervals: list[Interval], chrom: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, merged (starts, ends) of the intervals on one chromosome."""
    spans = sorted((iv.start, iv.end) for iv in intervals if iv.chrom == chrom)
    starts, ends = [], []
    for s, e in spans:
        if ends and s <= ends[-1]:
            ends[-1] = max(ends[-1], e)
        else:
            starts.append(s)
            ends.append(e)
    return np.array(starts, np.int64), np.array(ends, np.int64)


def _gc_bin(codes: np.ndarray) -> np.ndarray:
    """(..., L) codes -> GC bin (0..GC_BINS-1) of the ACGT letters of each window."""
    acgt = np.maximum((codes < 4).sum(axis=-1), 1)
    gc = ((codes == 1) | (codes == 2)).sum(axis=-1) / acgt
    return np.minimum((gc * GC_BINS).astype(np.int64), GC_BINS - 1)


def candidates(genome: Genome, peaks: list[Interval], length: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Genomic windows tiled at stride `length` that overlap no peak and hold no N: {chrom: (starts, GC bins)}."""
    out = {}
    for chrom, size in genome.sizes.items():
        p_start, p_end = _merged(peaks, chrom)
        starts_all, bins_all = [], []
        step = max(1, BLOCK // length) * length  # whole windows per block, so tiles stay contiguous
        for block in range(0, size - length + 1, step):
            n = (min(block + step, size) - block) // length
            codes = genome.codes(chrom, block, block + n * length).reshape(n, length)
            starts = block + np.arange(n, dtype=np.int64) * length
            idx = np.searchsorted(p_end, starts, side="right")  # first peak ending after the window's start
            hit = (idx < len(p_start)) & (p_start[np.minimum(idx, max(len(p_start) - 1, 0))] < starts + length)
            keep = ~hit & (codes < 4).all(axis=1)
            starts_all.append(starts[keep])
            bins_all.append(_gc_bin(codes[keep]))
        if starts_all:
            out[chrom] = (np.concatenate(starts_all), np.concatenate(bins_all))
    return out


def _match(want: np.ndarray, pool_bins: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Indices into the pool giving want[b] windows of GC bin b, taken from the nearest bins when one runs short;
    returns (indices, how many could not be matched at all)."""
    order = np.argsort(pool_bins, kind="stable")
    edges = np.r_[0, np.cumsum(np.bincount(pool_bins, minlength=GC_BINS))]
    by_bin = [rng.permutation(order[edges[b]:edges[b + 1]]) for b in range(GC_BINS)]
    used = np.zeros(GC_BINS, np.int64)
    chosen, missing = [], 0
    for b in np.flatnonzero(want):
        need = int(want[b])
        for d in range(GC_BINS):
            for nb in sorted({b - d, b + d}):
                if need and 0 <= nb < GC_BINS:
                    take = min(need, len(by_bin[nb]) - int(used[nb]))
                    chosen.append(by_bin[nb][used[nb]:used[nb] + take])
                    used[nb] += take
                    need -= take
            if not need:
                break
        missing += need
    return (np.concatenate(chosen) if chosen else np.array([], np.int64)), missing


def peaks_dataset(peaks: str | os.PathLike, genome_path: str | os.PathLike, length: int = 200,
                  negatives_per_positive: float = 1.0, shuffles: int = 0,
                  valid_chroms: list[str] = list(DEFAULT_VALID_CHROMS),
                  test_chroms: list[str] = list(DEFAULT_TEST_CHROMS), seed: int = 0) -> tuple[Dataset, list[Window]]:
    """Dataset (x (N, length, 4), y (N, 1) per split) and its windows, rows in the same order per split."""
    if length < 20:
        raise DatasetError("--length must be at least 20")
    rng = np.random.default_rng(seed)
    genome = Genome(genome_path)
    split_of = _split_of(genome, valid_chroms, test_chroms)
    raw = [iv for iv in read_intervals(peaks, genome, None) if isinstance(iv, Interval)]
    windows, rejects = [], []
    for iv in read_intervals(peaks, genome, length):
        (rejects if isinstance(iv, LineReject) else windows).append(iv)
    for r in rejects[:5]:
        say(f"{peaks}: line {r.index + 1} ({r.id}) skipped: {r.reason}")
    if len(rejects) > 5:
        say(f"{peaks}: ... {len(rejects)} lines skipped in all")
    summits = sorted({(iv.chrom, iv.start, iv.end) for iv in windows})
    if not summits:
        raise DatasetError(f"{peaks}: no usable peaks ({len(rejects)} lines skipped)")
    pos_codes = np.stack([genome.codes(c, s, e) for c, s, e in summits])
    pos_split = np.array([split_of[c] for c, _, _ in summits])
    pool = candidates(genome, raw + [Interval(c, s, e) for c, s, e in summits], length)
    rows: list[tuple[np.ndarray, Window]] = [(code, Window(c, s, e, "summit", 1, split_of[c]))
                                             for code, (c, s, e) in zip(pos_codes, summits)]
    missing = 0
    for split in SPLITS:
        chroms = [c for c in pool if split_of[c] == split]
        if not (pos_split == split).any():
            raise DatasetError(f"no peak falls on a {split} chromosome "
                               f"({', '.join(c for c, s in split_of.items() if s == split) or 'none'}); "
                               "choose others with --valid-chroms / --test-chroms")
        want = np.rint(np.bincount(_gc_bin(pos_codes[pos_split == split]), minlength=GC_BINS)
                       * negatives_per_positive).astype(int)
        owner = np.concatenate([np.full(len(pool[c][0]), k) for k, c in enumerate(chroms)] + [np.zeros(0, int)])
        starts = np.concatenate([pool[c][0] for c in chroms] + [np.zeros(0, np.int64)])
        bins = np.concatenate([pool[c][1] for c in chroms] + [np.zeros(0, np.int64)])
        chosen, short = _match(want, bins, rng)
        missing += short
        for k in chosen[np.lexsort((starts[chosen], owner[chosen]))]:  # genome order: reads stay sequential
            c, s = chroms[owner[k]], int(starts[k])
            rows.append((genome.codes(c, s, s + length), Window(c, s, s + length, "genomic", 0, split)))
    for code, (c, s, e) in zip(pos_codes, summits):
        for _ in range(shuffles):
            rows.append((shuffle_codes(code, rng), Window(c, s, e, "shuffle", 0, split_of[c])))
    if missing:
        say(f"note: {missing} negatives could not be GC-matched (too few peak-free windows); the set has fewer")
    order = rng.permutation(len(rows))
    x, y, kept = {}, {}, []
    for split in SPLITS:
        idx = [i for i in order if rows[i][1].split == split]
        x[split] = codes_to_onehot(np.stack([rows[i][0] for i in idx]))
        y[split] = np.array([[rows[i][1].label] for i in idx], np.float32)
        kept += [rows[i][1] for i in idx]
    n_neg = sum(w.kind == "genomic" for w in kept)
    desc = (f"peaks dataset: {len(summits)} summit windows from {Path(peaks).name} ({len(rejects)} lines skipped), "
            f"{n_neg} GC-matched genomic negatives ({negatives_per_positive:g} per positive), "
            f"{len(summits) * shuffles} dinucleotide shuffles, genome {Path(genome_path).name}, length {length}; "
            f"valid {','.join(valid_chroms)}, test {','.join(test_chroms)}, seed {seed}")
    return Dataset(x, y, {}, desc), kept


def write_windows(windows: list[Window], path: str | os.PathLike) -> Path:
    """BED of the dataset's rows: chrom, start, end, kind, label, split, row (index in x_<split>)."""
    path = Path(path)
    row = dict.fromkeys(SPLITS, 0)
    with open(path, "w") as fh:
        for w in windows:
            fh.write(f"{w.chrom}\t{w.start}\t{w.end}\t{w.kind}\t{w.label}\t{w.split}\t{row[w.split]}\n")
            row[w.split] += 1
    return path
