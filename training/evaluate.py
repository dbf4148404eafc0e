"""How good a model is: test-set metrics (accuracy, AUROC, AUPR) in plain numpy, how well attributions find a
known motif, and the training-history and ROC/PR plots (PNG)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from serving.plots import pyplot, save_figure


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged). y: (N,) 0/1, score: (N,)."""
    y = np.asarray(y).reshape(-1).astype(bool)
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), np.float64)
    sorted_scores = score[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct threshold, from (0, 0) to (1, 1)."""
    y, score = np.asarray(y).reshape(-1).astype(bool), np.asarray(score).reshape(-1)
    order = np.argsort(-score, kind="mergesort")
    y, s = y[order], score[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    return np.r_[0, fp / max(fp[-1], 1)], np.r_[0, tp / max(tp[-1], 1)]


def pr_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at every distinct threshold, highest threshold first."""
    y, score = np.asarray(y).reshape(-1).astype(bool), np.asarray(score).reshape(-1)
    order = np.argsort(-score, kind="mergesort")
    y, s = y[order], score[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last]
    predicted = last + 1
    return tp / max(y.sum(), 1), tp / predicted


def aupr(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision: sum over thresholds of (recall step) x precision."""
    recall, precision = pr_curve(y, score)
    return float(np.sum(np.diff(np.r_[0, recall]) * precision))


def metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """y: (N,) or (N, 1) 0/1; prob: (N,) -> accuracy (threshold 0.5), auroc, aupr, n, positives."""
    y = np.asarray(y).reshape(-1)
    prob = np.asarray(prob).reshape(-1)
    return {
        "accuracy": round(float(((prob >= 0.5) == (y >= 0.5)).mean()), 6),
        "auroc": round(auroc(y, prob), 6),
        "aupr": round(aupr(y, prob), 6),
        "n": int(len(y)),
        "positives": int((y >= 0.5).sum()),
    }


def motif_auroc(scores: np.ndarray, motif: np.ndarray) -> np.ndarray:
    """Per-sequence AUROC of position attribution (sum over bases of scores) against the positions
    of the embedded motif. scores: (N, L, 4); motif: (N, 3) (start, end, strand), start -1 = none.
    Returns (K,) for the K sequences that carry a motif; chance is 0.5."""
    per_position = np.asarray(scores).sum(axis=-1)
    values = []
    for s, (start, end, _) in zip(per_position, motif):
        if start < 0:
            continue
        mask = np.zeros(len(s), bool)
        mask[start:end] = True
        values.append(auroc(mask, s))
    return np.array(values)


def planted_recovery(position_scores: np.ndarray, motif: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How well each sequence's attribution magnitude recovers its planted positions (the protocol of Majdandzic,
    Rajesh & Koo, Genome Biology 2023): per sequence, AUROC and AUPR (average precision) of position_scores
    (N, L), e.g. |attribution| summed over bases, against 1 inside the planted instance, 0 elsewhere. motif: (N, 3)
    (start, end, strand), start -1 = none. Returns (auroc (K,), aupr (K,)) for the K carriers; chance: 0.5 and
    the instance's share of the positions (19 / 200 = 0.095)."""
    aurocs, auprs = [], []
    for s, (start, end, _) in zip(np.asarray(position_scores, np.float64), np.asarray(motif)):
        if start < 0:
            continue
        mask = np.zeros(len(s), bool)
        mask[start:end] = True
        aurocs.append(auroc(mask, s))
        auprs.append(aupr(mask, s))
    return np.array(aurocs), np.array(auprs)


def top_window_hits(scores: np.ndarray, motif: np.ndarray, window: int = 19) -> np.ndarray:
    """Whether each sequence's top-attributed `window`-nt window (highest sum of scores over bases and
    positions) overlaps its planted instance. scores: (N, L, 4); motif: (N, 3) (start, end, strand),
    start -1 = none. Returns (K,) bool for the K sequences that carry an instance; its mean is the
    attribution-on-motif rate (chance ~ (19 + 18) / 182 ~ 0.2 at L = 200)."""
    per_position = np.asarray(scores, np.float64).sum(axis=-1)
    csum = np.concatenate([np.zeros((len(per_position), 1)), np.cumsum(per_position, axis=1)], axis=1)
    best = (csum[:, window:] - csum[:, :-window]).argmax(axis=1)  # start of the best window
    motif = np.asarray(motif)
    keep = motif[:, 0] >= 0
    return (best[keep] < motif[keep, 1]) & (best[keep] + window > motif[keep, 0])


def top_positions_inside(scores: np.ndarray, motif: np.ndarray, k: int = 19) -> np.ndarray:
    """Of each carrier's k highest-attributed positions (sum over bases), the fraction inside its planted
    instance: (K,) float for the K sequences with one (a graded companion of top_window_hits; chance ~0.1)."""
    per_position = np.asarray(scores, np.float64).sum(axis=-1)
    motif = np.asarray(motif)
    keep = motif[:, 0] >= 0
    top = np.argsort(-per_position[keep], axis=1, kind="stable")[:, :k]
    return ((top >= motif[keep, :1]) & (top < motif[keep, 1:2])).mean(axis=1)


def top_indices(prob: np.ndarray, top: int) -> np.ndarray:
    """Indices of the `top` highest predictions, highest first (the notebook's selection)."""
    return np.argsort(-np.asarray(prob).reshape(-1), kind="mergesort")[:top]


def plot_history(history: dict[str, list[float]], path: str | os.PathLike) -> Path:
    """Loss and AUROC per epoch, train vs validation."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, key in zip(axes, ("loss", "auroc")):
        for prefix, label in (("", "train"), ("val_", "validation")):
            if prefix + key in history:
                ax.plot(np.arange(1, len(history[prefix + key]) + 1), history[prefix + key], label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
    return save_figure(fig, path)


def plot_curves(y: np.ndarray, prob: np.ndarray, path: str | os.PathLike) -> Path:
    """ROC and precision-recall curves on the test split, with their areas."""
    plt = pyplot()
    fpr, tpr = roc_curve(y, prob)
    recall, precision = pr_curve(y, prob)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
    a.plot(fpr, tpr)
    a.plot([0, 1], [0, 1], "k--", lw=0.8)
    a.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC (AUROC {auroc(y, prob):.3f})")
    b.plot(recall, precision)
    b.axhline(float(np.mean(np.asarray(y) >= 0.5)), color="k", ls="--", lw=0.8)
    b.set(xlabel="recall", ylabel="precision", title=f"PR (AUPR {aupr(y, prob):.3f})", ylim=(0, 1.02))
    return save_figure(fig, path)
