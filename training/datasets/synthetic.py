"""The built-in synthetic CTCF dataset: seeded sequences with JASPAR MA0139.1 instances in the positives and
the confounders that keep it from being trivially separable (GC variation, repeats, decoys, weak instances)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from serving.dna import codes_to_onehot, to_codes
from training.datasets.h5 import SPLITS, Dataset, split_indices, write_h5
from training.datasets.jaspar import load_jaspar, motif_probabilities

DEFAULT_SYNTHETIC_N = 73_080  # 51,156 training sequences, as CTCF_200.h5


def _sample_from(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """probs: (K, W, 4) -> codes (K, W) uint8, one categorical draw per position."""
    cum = probs.cumsum(axis=-1)
    u = rng.random(probs.shape[:-1] + (1,))
    return np.minimum((u > cum).sum(axis=-1), 3).astype(np.uint8)


def synthetic_dataset(n: int = DEFAULT_SYNTHETIC_N, length: int = 200, seed: int = 0) -> Dataset:
    """The built-in CTCF-like dataset: deterministic for a given (n, length, seed).

    Half the sequences are positives. Every sequence has its own GC content (0.3-0.65), and may
    carry a low-complexity repeat and a 'decoy' (the CTCF matrix with its columns shuffled, same
    composition). Positives carry one instance sampled from JASPAR MA0139.1 on a random strand,
    centred with +-40 nt jitter; 8% of positives have none (peaks without the motif) and 15% of
    negatives carry a weak instance sampled from a flattened matrix, so the task is not trivially
    separable. motif_* records each true instance's (start, end, strand).
    """
    if n < 10:
        raise ValueError("n must be at least 10")
    rng = np.random.default_rng(seed)
    _, counts = load_jaspar()
    pwm = motif_probabilities(counts)
    width = len(pwm)
    if length < width + 2:
        raise ValueError(f"length must be at least {width + 2}")

    y = np.zeros(n, np.float32)
    y[: n // 2] = 1
    rng.shuffle(y)

    gc = rng.uniform(0.3, 0.65, size=n)
    base_p = np.stack([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2], axis=1)  # (n, 4)
    codes = _sample_from(np.broadcast_to(base_p[:, None, :], (n, length, 4)), rng)

    # low-complexity repeats ((CA)n, poly-A/T, CpG runs) in 30% of sequences
    repeats = [np.array(to_codes(r)) for r in ("CA" * 12, "A" * 18, "T" * 18, "CG" * 8, "GGC" * 6)]
    for i in np.flatnonzero(rng.random(n) < 0.3):
        r = repeats[rng.integers(len(repeats))]
        start = rng.integers(0, length - len(r) + 1)
        codes[i, start:start + len(r)] = r

    def place(i: int, motif_codes: np.ndarray, start: int, strand: int) -> None:
        codes[i, start:start + width] = motif_codes if strand > 0 else (3 - motif_codes)[::-1]

    # decoys: the CTCF matrix with shuffled columns, anywhere, in 40% of sequences of both classes
    for i in np.flatnonzero(rng.random(n) < 0.4):
        decoy_pwm = pwm[rng.permutation(width)]
        place(i, _sample_from(decoy_pwm[None], rng)[0], rng.integers(0, length - width + 1), 1)

    motif = np.tile(np.array([-1, -1, 0], np.int32), (n, 1))
    centre = (length - width) // 2
    jitter = min(40, centre)
    carriers = np.flatnonzero((y == 1) & (rng.random(n) >= 0.08))
    weak = np.flatnonzero((y == 0) & (rng.random(n) < 0.15))
    flat = pwm ** 0.35
    flat /= flat.sum(axis=1, keepdims=True)
    for idx, matrix in ((carriers, pwm), (weak, flat)):
        draws = _sample_from(np.broadcast_to(matrix, (len(idx), width, 4)), rng)
        starts = centre + rng.integers(-jitter, jitter + 1, size=len(idx))
        strands = rng.choice([-1, 1], size=len(idx))
        for i, m, s, st in zip(idx, draws, starts, strands):
            place(i, m, s, st)
            if matrix is pwm:
                motif[i] = (s, s + width, st)

    parts = split_indices(n, rng)
    x = codes_to_onehot(codes)
    desc = (f"built-in synthetic CTCF set (JASPAR MA0139.1 instances), n={n}, length={length}, seed={seed}")
    return Dataset({s: x[i] for s, i in parts.items()}, {s: y[i, None] for s, i in parts.items()},
                   {s: motif[i] for s, i in parts.items()}, desc)


def write_synthetic(out: str | os.PathLike, n: int = DEFAULT_SYNTHETIC_N, length: int = 200, seed: int = 0) -> Path:
    ds = synthetic_dataset(n, length, seed)
    return write_h5(out, ds.x, {s: ds.y[s][:, 0] for s in SPLITS}, ds.motif, ds.description)


