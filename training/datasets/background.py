"""Genome-like background DNA for the built-in dataset: a first-order Markov chain with the human genome's
dinucleotide frequencies (CpG depleted), GC content that varies in long stretches, CpG islands, simple repeats
and low-complexity stretches, so a model cannot learn i.i.d.-letter artefacts that real DNA does not have.

Published figures used (rounded):
- Human dinucleotide frequencies, percent of all dinucleotides of the assembled genome (hg19 counts; the
  relative abundances CG ~0.23-0.25, TA ~0.75, CA/TG ~1.2 of Karlin & Mrazek 1997, PNAS 94:10227, and Gentles &
  Karlin 2001, Genome Res 11:540): GC content 41% and CpG at about a fifth of its expected frequency (Lander et
  al. 2001, Nature 409:860). HUMAN_DINUCLEOTIDES below gives obs/exp CG = 0.24, TA = 0.75, GC content 0.409.
- GC content varies over hundreds of kb (isochores, Bernardi et al. 1985, Science 228:953; families from ~37% to
  ~53% GC) and, within them, from one few-hundred-bp stretch to the next: GC of 200-bp windows has an SD of ~0.08.
- CpG islands: >= 200 bp, GC > 50%, CpG obs/exp > 0.6 (Gardiner-Garden & Frommer 1987, J Mol Biol 196:261).
- Simple repeats: (A)n, (AC)n, (AT)n, (AG)n, (AAAT)n, (AAAC)n, (AAAG)n, (GGAA)n are the most common human
  microsatellites (Subramanian et al. 2003, Genome Biol 4:R13).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from serving.dna import to_codes

# rows: first base A, C, G, T; columns: second base A, C, G, T; percent of dinucleotides (strand-symmetric)
HUMAN_DINUCLEOTIDES = np.array([
    [9.7, 5.0, 7.0, 7.6],
    [7.3, 5.2, 1.0, 7.0],
    [5.9, 4.3, 5.2, 5.0],
    [6.5, 5.9, 7.3, 9.7],
])
CPG_ISLAND_CG_BOOST = 3.6  # CG x 3.6 lifts obs/exp CG from 0.24 to ~0.8 at island GC (0.6-0.7)
GC_GRID = np.round(np.arange(0.20, 0.801, 0.01), 2)
SIMPLE_REPEATS = ("A", "AC", "AT", "AG", "AAAT", "AAAC", "AAAG", "GGAA")
LOW_COMPLEXITY = ("AT", "AG", "CT", "GA", "CA")  # two-letter alphabets of low-complexity stretches
_IS_GC = np.array([0.0, 1.0, 1.0, 0.0])


def tilted(freqs: np.ndarray, gc: float) -> np.ndarray:
    """(4, 4) dinucleotide frequencies reweighted by exp(t * #GC letters) so that the GC content is `gc`,
    keeping each dinucleotide's relative abundance (CpG depletion) close to the original."""
    weight = _IS_GC[:, None] + _IS_GC[None, :]
    lo, hi = -10.0, 10.0
    for _ in range(60):  # bisection on t: GC content grows with t
        t = (lo + hi) / 2
        f = freqs * np.exp(t * weight)
        f = f / f.sum()
        share = (f.sum(axis=1) @ _IS_GC + f.sum(axis=0) @ _IS_GC) / 2
        lo, hi = (t, hi) if share < gc else (lo, t)
    return f


def cg_obs_exp(freqs: np.ndarray) -> float:
    """Observed/expected CpG of (4, 4) dinucleotide frequencies: f(CG) / (f(C) f(G))."""
    f = freqs / freqs.sum()
    mono = (f.sum(axis=1) + f.sum(axis=0)) / 2
    return float(f[1, 2] / (mono[1] * mono[2]))


@lru_cache(maxsize=2)
def transition_tables(island: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Markov chains on GC_GRID: (G, 4, 4) cumulative transition probabilities P(next | previous) and (G, 4)
    cumulative start probabilities, from the human table (island: CG boosted to CpG-island levels)."""
    base = HUMAN_DINUCLEOTIDES.copy()
    if island:
        base[1, 2] *= CPG_ISLAND_CG_BOOST
    trans, start = [], []
    for gc in GC_GRID:
        f = tilted(base, gc)
        trans.append(f / f.sum(axis=1, keepdims=True))
        start.append(f.sum(axis=1))
    return np.cumsum(trans, axis=-1), np.cumsum(start, axis=-1)


def gc_tracks(n: int, length: int, rng: np.random.Generator, level_sd: float = 0.045,
              stretch_sd: float = 0.06, stretch_mean: float = 150.0) -> np.ndarray:
    """(n, length) GC level per position: an isochore level per sequence (mean 0.41) plus a change every
    ~stretch_mean nt (exponential stretch lengths), clipped to the grid."""
    level = rng.normal(0.41, level_sd, size=(n, 1))
    n_cuts = max(1, int(3 * length / stretch_mean) + 4)
    cuts = np.cumsum(rng.exponential(stretch_mean, size=(n, n_cuts)), axis=1) - rng.uniform(0, stretch_mean, (n, 1))
    pos = np.arange(length)[None, :]
    which = np.zeros((n, length), np.int64)  # stretch index of every position
    for k in range(n_cuts):
        which += cuts[:, k:k + 1] <= pos
    offsets = rng.normal(0, stretch_sd, size=(n, n_cuts + 1))
    track = level + np.take_along_axis(offsets, which, axis=1)
    return np.clip(track, GC_GRID[0], GC_GRID[-1])


def markov_codes(gc: np.ndarray, rng: np.random.Generator, island: np.ndarray | None = None) -> np.ndarray:
    """Sample (n, length) uint8 codes from the human first-order chain, position by position, at the GC
    level gc (n, length); island (n, length) bool marks CpG-island positions (CG not depleted)."""
    n, length = gc.shape
    g = np.clip(np.rint((gc - GC_GRID[0]) / 0.01).astype(np.int64), 0, len(GC_GRID) - 1)
    tables = [transition_tables(False), transition_tables(True)]
    isl = np.zeros((n, length), bool) if island is None else island
    u = rng.random((n, length))
    codes = np.empty((n, length), np.uint8)
    rows = np.arange(n)
    start = np.where(isl[:, 0, None], tables[1][1][g[:, 0]], tables[0][1][g[:, 0]])
    codes[:, 0] = np.minimum((u[:, :1] > start).sum(axis=1), 3)
    for t in range(1, length):
        prev = codes[:, t - 1]
        cum = np.where(isl[:, t, None], tables[1][0][g[:, t], prev], tables[0][0][g[:, t], prev])
        codes[:, t] = np.minimum((u[rows, t, None] > cum).sum(axis=1), 3)
    return codes


def cpg_islands(n: int, length: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """In `fraction` of n sequences, one CpG island (>= 150 nt or the whole window) -> (mask (n, length) bool,
    island GC level (n, 1) ~ N(0.65, 0.04))."""
    mask = np.zeros((n, length), bool)
    for i in np.flatnonzero(rng.random(n) < fraction):
        size = int(rng.integers(min(150, length), length + 1))
        start = int(rng.integers(0, length - size + 1))
        mask[i, start:start + size] = True
    return mask, np.clip(rng.normal(0.65, 0.04, size=(n, 1)), 0.55, GC_GRID[-1])


def genome_like(n: int, length: int, rng: np.random.Generator, island_fraction: float = 0.1) -> np.ndarray:
    """(n, length) uint8 codes of genome-like background (human dinucleotides, varying GC, CpG islands)."""
    gc = gc_tracks(n, length, rng)
    island, island_gc = cpg_islands(n, length, island_fraction, rng)
    gc = np.where(island, island_gc, gc)
    return markov_codes(gc, rng, island)


def iid_background(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """(n, length) uint8 codes of independent letters at a per-sequence GC content 0.3-0.65 (the first
    built-in set's background, kept for comparison)."""
    gc = rng.uniform(0.3, 0.65, size=(n, 1))
    cum = np.cumsum(np.concatenate([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2], axis=1), axis=1)
    return np.minimum((rng.random((n, length, 1)) > cum[:, None, :]).sum(axis=-1), 3).astype(np.uint8)


def add_repeats(codes: np.ndarray, rng: np.random.Generator, simple: float = 0.2, low_complexity: float = 0.1) -> None:
    """In place: a simple repeat (15-60 nt, 5% point changes, either strand) in `simple` of the sequences and a
    low-complexity stretch (20-60 nt from a two-letter alphabet) in `low_complexity` of them."""
    n, length = codes.shape
    for i in np.flatnonzero(rng.random(n) < simple):
        unit = to_codes(SIMPLE_REPEATS[rng.integers(len(SIMPLE_REPEATS))])
        size = int(rng.integers(15, min(60, length) + 1))
        tract = np.resize(unit, size)
        changed = rng.random(size) < 0.05
        tract[changed] = rng.integers(0, 4, size=int(changed.sum()))
        if rng.random() < 0.5:
            tract = (3 - tract)[::-1]
        start = int(rng.integers(0, length - size + 1))
        codes[i, start:start + size] = tract
    for i in np.flatnonzero(rng.random(n) < low_complexity):
        letters = to_codes(LOW_COMPLEXITY[rng.integers(len(LOW_COMPLEXITY))])
        size = int(rng.integers(20, min(60, length) + 1))
        start = int(rng.integers(0, length - size + 1))
        codes[i, start:start + size] = letters[(rng.random(size) < rng.uniform(0.2, 0.8)).astype(int)]
