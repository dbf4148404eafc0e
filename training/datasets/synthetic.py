"""The built-in synthetic datasets: genome-like background (human dinucleotides, CpG islands, repeats) with
instances of a JASPAR matrix (CTCF MA0139.1 by default, any CORE vertebrate one by ID) near the centre of the
positives, and decoys and weak instances in both classes."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from training.datasets.background import add_repeats, genome_like, iid_background
from serving.dna import codes_to_onehot
from training.datasets.h5 import SPLITS, Dataset, split_indices, write_h5
from training.datasets.jaspar import jaspar_text, load_jaspar, motif_probabilities

DEFAULT_SYNTHETIC_N = 73_080  # 51,156 training sequences, as CTCF_200.h5
BACKGROUNDS = ("genome", "iid")
# Where a peak's motif sits: ChIP-seq summits fall within a few tens of bp of the bound site (CentriMo, Bailey &
# Machanick 2012, NAR 40:e128): the instance's centre is the window's centre + Laplace(0, SUMMIT_SCALE) nt
# (median distance ~10 nt, SD ~21 nt), clipped to the window.
SUMMIT_SCALE = 15.0
POSITIVE_MIX = {"strong": 0.80, "weak": 0.12}  # the other 8% of positives carry no instance (peaks without motif)
WEAK_SHARPNESS = (0.35, 0.7)  # weak instances: MA0139.1 probabilities ** s (renormalized), s uniform in this range
DECOY_FRACTION = 0.4  # both classes: the CTCF matrix with shuffled columns (same composition), anywhere
NEGATIVE_WEAK_FRACTION = 0.15  # negatives: a weak instance anywhere (chance matches off any summit) ...
NEGATIVE_WEAK_SHARPNESS = WEAK_SHARPNESS  # ... as weak as the weak positives: only the place tells them apart


def _sample_from(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """probs: (K, W, 4) -> codes (K, W) uint8, one categorical draw per position."""
    cum = probs.cumsum(axis=-1)
    u = rng.random(probs.shape[:-1] + (1,))
    return np.minimum((u > cum).sum(axis=-1), 3).astype(np.uint8)


def _sharpened(pwm: np.ndarray, s: np.ndarray) -> np.ndarray:
    """pwm (W, 4), s (K,) -> (K, W, 4): pwm ** s per draw, renormalized (s < 1 flattens: a weaker site)."""
    p = pwm[None] ** np.asarray(s, np.float64)[:, None, None]
    return p / p.sum(axis=-1, keepdims=True)


def synthetic_dataset(n: int = DEFAULT_SYNTHETIC_N, length: int = 200, seed: int = 0,
                      background: str = "genome", matrix: tuple[str, np.ndarray] | None = None) -> Dataset:
    """The built-in CTCF-like dataset: deterministic for a given (n, length, seed, background, matrix).
    matrix: (name, counts (W, 4) ACGT), e.g. training.datasets.jaspar.fetch_jaspar("MA0138"); None: the shipped
    CTCF MA0139.1 (the default set, unchanged). Every rule below holds for any matrix ("CTCF" = the matrix).

    Half the sequences are positives. Background: "genome" (training/datasets/background.py: first-order
    Markov chain with human dinucleotide frequencies, GC varying in stretches, CpG islands in 10%) or "iid"
    (independent letters, per-sequence GC 0.3-0.65: the first built-in set). Both get simple repeats (20%)
    and low-complexity stretches (10%). In both classes 40% carry a decoy (column-shuffled CTCF matrix), and 15%
    of negatives a weak instance anywhere. Positives carry an MA0139.1 instance on a random strand at
    centre + Laplace(15 nt): 80% sampled from the matrix (strong), 12% from a flattened matrix (weak: as weak as
    the negatives' ones, so only the place relative to the summit tells them apart), 8% none.
    motif_* records each planted positive instance's (start, end, strand), (-1, -1, 0) where there is none.
    """
    if n < 10:
        raise ValueError("n must be at least 10")
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    rng = np.random.default_rng(seed)
    default = matrix is None
    name, counts = load_jaspar() if default else matrix
    pwm = motif_probabilities(counts)
    width = len(pwm)
    if length < width + 2:
        raise ValueError(f"length must be at least {width + 2}")

    y = np.zeros(n, np.float32)
    y[: n // 2] = 1
    rng.shuffle(y)
    codes = genome_like(n, length, rng) if background == "genome" else iid_background(n, length, rng)
    add_repeats(codes, rng)

    def place(i: int, motif_codes: np.ndarray, start: int, strand: int) -> None:
        codes[i, start:start + width] = motif_codes if strand > 0 else (3 - motif_codes)[::-1]

    for i in np.flatnonzero(rng.random(n) < DECOY_FRACTION):
        decoy = _sample_from(pwm[rng.permutation(width)][None], rng)[0]
        place(i, decoy, int(rng.integers(0, length - width + 1)), int(rng.choice([-1, 1])))

    weak_negatives = np.flatnonzero((y == 0) & (rng.random(n) < NEGATIVE_WEAK_FRACTION))
    weak_sharpness = rng.uniform(*NEGATIVE_WEAK_SHARPNESS, len(weak_negatives))
    for i, m in zip(weak_negatives, _sample_from(_sharpened(pwm, weak_sharpness), rng)):
        place(i, m, int(rng.integers(0, length - width + 1)), int(rng.choice([-1, 1])))

    motif = np.tile(np.array([-1, -1, 0], np.int32), (n, 1))
    kind = rng.random(n)
    carriers = np.flatnonzero((y == 1) & (kind < POSITIVE_MIX["strong"] + POSITIVE_MIX["weak"]))
    sharpness = np.where(kind[carriers] < POSITIVE_MIX["strong"], 1.0, rng.uniform(*WEAK_SHARPNESS, len(carriers)))
    draws = _sample_from(_sharpened(pwm, sharpness), rng)
    centre = (length - width) // 2
    starts = np.clip(np.rint(centre + rng.laplace(0, SUMMIT_SCALE, len(carriers))), 0, length - width).astype(int)
    strands = rng.choice([-1, 1], size=len(carriers))
    for i, m, s, st in zip(carriers, draws, starts, strands):
        place(i, m, s, st)
        motif[i] = (s, s + width, st)

    parts = split_indices(n, rng)
    x = codes_to_onehot(codes)
    return Dataset({s: x[i] for s, i in parts.items()}, {s: y[i, None] for s, i in parts.items()},
                   {s: motif[i] for s, i in parts.items()},
                   synthetic_description(n, length, seed, background, None if default else name),
                   "" if default else jaspar_text(name, counts))


def synthetic_description(n: int, length: int, seed: int, background: str = "genome",
                          matrix_name: str | None = None) -> str:
    """The description stored with the set; names the generator version, so a stale file is recognised.
    matrix_name: "MA0138.3 REST" for a set made with another matrix (None: the default CTCF set)."""
    matrix_id, _, factor = (matrix_name or "MA0139.1 CTCF").partition(" ")
    return (f"built-in synthetic {factor or matrix_id} set v2 (JASPAR {matrix_id} instances, {background} "
            f"background), n={n}, length={length}, seed={seed}")


def write_synthetic(out: str | os.PathLike, n: int = DEFAULT_SYNTHETIC_N, length: int = 200, seed: int = 0,
                    background: str = "genome", matrix: tuple[str, np.ndarray] | None = None) -> Path:
    """Write synthetic_dataset(...) to out (HDF5); a set made with `matrix` records it (attribute "matrix")."""
    ds = synthetic_dataset(n, length, seed, background, matrix)
    return write_h5(out, ds.x, {s: ds.y[s][:, 0] for s in SPLITS}, ds.motif, ds.description, ds.matrix)
