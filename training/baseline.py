"""The PWM baseline a learned model must beat: each sequence scored by its best log-odds match of the data's
matrix (the one a built-in set records as planted; JASPAR MA0139.1 CTCF otherwise) on either strand, and AUROC/AUPR
of that score on the same split as the CNN (what evaluate and export report)."""
from __future__ import annotations

import os

import numpy as np

from training.datasets.jaspar import load_jaspar, motif_probabilities, parse_jaspar
from training.evaluate import aupr, auroc

BASELINE_NAME = "best {} log-odds match per sequence (both strands, uniform background, pseudocount 0.5)"


def log_odds(counts: np.ndarray, pseudocount: float = 0.5, background: float = 0.25) -> np.ndarray:
    """(W, 4) counts -> (W, 4) log2(p / background) with p = motif_probabilities(counts, pseudocount)."""
    return np.log2(motif_probabilities(counts, pseudocount) / background).astype(np.float32)


def match_scores(x: np.ndarray, matrix: np.ndarray, batch: int = 8192) -> np.ndarray:
    """Log-odds of every window on both strands: x (N, L, 4) one-hot (N rows are zero and score 0),
    matrix (W, 4) -> (N, 2, L - W + 1) float32, [:, 0] forward strand, [:, 1] reverse strand (window start
    on the forward strand)."""
    x = np.asarray(x, np.float32)
    n, length, _ = x.shape
    width = len(matrix)
    if length < width:
        raise ValueError(f"sequences of length {length} are shorter than the {width}-column matrix")
    rc = matrix[::-1, ::-1]
    out = np.zeros((n, 2, length - width + 1), np.float32)
    for s in range(0, n, batch):
        xb = x[s:s + batch]
        for j in range(width):  # W small matmuls: (N, L-W+1, 4) @ (4,) per matrix column
            view = xb[:, j:j + length - width + 1]
            out[s:s + batch, 0] += view @ matrix[j]
            out[s:s + batch, 1] += view @ rc[j]
    return out


def best_match(x: np.ndarray, matrix: np.ndarray | None = None) -> np.ndarray:
    """x (N, L, 4) -> (N,) best log-odds match of `matrix` (default MA0139.1) on either strand."""
    if matrix is None:
        matrix = log_odds(load_jaspar()[1])
    return match_scores(x, matrix).reshape(len(x), -1).max(axis=1)


def best_match_position(x: np.ndarray, matrix: np.ndarray | None = None) -> np.ndarray:
    """x (N, L, 4) -> (N, 3) int32 (start, end, strand +1/-1) of each sequence's best match."""
    if matrix is None:
        matrix = log_odds(load_jaspar()[1])
    scores = match_scores(x, matrix)
    flat = scores.reshape(len(x), -1).argmax(axis=1)
    strand, start = np.divmod(flat, scores.shape[2])
    return np.stack([start, start + len(matrix), np.where(strand == 0, 1, -1)], axis=1).astype(np.int32)


def pwm_baseline(x: np.ndarray, y: np.ndarray, jaspar: str | os.PathLike | None = None,
                 matrix_text: str = "") -> dict:
    """AUROC and AUPR of the best-match score on x (N, L, 4) against labels y (N,) or (N, 1). The matrix:
    matrix_text (JASPAR text, as a dataset records it: Dataset.matrix) if given, else the file `jaspar`, else
    the shipped MA0139.1."""
    name, counts = parse_jaspar(matrix_text) if matrix_text else load_jaspar(jaspar)
    score = best_match(x, log_odds(counts))
    y = np.asarray(y).reshape(-1)
    return {"matrix": name, "score": BASELINE_NAME.format(name.partition(" ")[0]), "auroc": round(auroc(y, score), 6),
            "aupr": round(aupr(y, score), 6), "n": int(len(y))}


def verdict(cnn_auroc: float, baseline: dict) -> dict:
    """Whether the CNN beats the baseline's AUROC: {"beats_baseline", "margin"} for metadata."""
    margin = round(float(cnn_auroc) - float(baseline["auroc"]), 6)
    return {"beats_baseline": bool(margin > 0), "auroc_margin": margin}
