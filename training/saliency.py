"""Saliency maps from the exported SavedModel: gradient of the pre-sigmoid logit w.r.t. the one-hot
input, times the input (grad x input), optional gradient correction, logos and a heat map (PNG),
and a score of how well attributions find a known motif."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from serving.artifact import SAVED_MODEL_DIR
from serving.encoding import ALPHABET
from training.evaluate import auroc


def load_logits_fn(model_dir: str | os.PathLike):
    """The SavedModel's `logits` endpoint: (N, L, 4) float32 tensor -> (N, 1) logit."""
    import tensorflow as tf

    root = tf.saved_model.load(str(Path(model_dir) / SAVED_MODEL_DIR))

    def logits(x):
        return root.logits(x)  # the closure keeps `root` (and so its variables) alive

    return logits


def gradients(logits_fn, x: np.ndarray, corrected: bool = False, batch_size: int = 512) -> np.ndarray:
    """d logit / d x for x: (N, L, 4) float32 -> (N, L, 4) float32.

    corrected: subtract, at each position, the mean gradient over the 4 bases (removes the
    off-simplex component of the gradient; Majdandzic & Koo)."""
    import tensorflow as tf

    out = []
    for start in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(np.asarray(x[start:start + batch_size], np.float32))
        with tf.GradientTape() as tape:
            tape.watch(xb)
            z = tf.reduce_sum(logits_fn(xb))  # per-sequence logits are independent: sum = each one's grad
        out.append(tape.gradient(z, xb).numpy())
    grad = np.concatenate(out) if out else np.zeros_like(x, np.float32)
    if corrected:
        grad = grad - grad.mean(axis=-1, keepdims=True)
    return grad


def saliency(logits_fn, x: np.ndarray, corrected: bool = False) -> np.ndarray:
    """grad x input scores: (N, L, 4) float32 (non-zero only at each position's observed base)."""
    return gradients(logits_fn, x, corrected) * np.asarray(x, np.float32)


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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_logo(scores: np.ndarray, path: str | os.PathLike, title: str = "", alphabet: str = ALPHABET,
              ylabel: str = "grad x input") -> Path:
    """One sequence's (L, 4) scores as a logomaker logo (letters above/below zero), saved as PNG."""
    import logomaker
    import pandas as pd

    plt = _pyplot()
    frame = pd.DataFrame(np.asarray(scores, np.float64), columns=list(alphabet))
    fig, ax = plt.subplots(figsize=(max(6.0, len(frame) / 20), 1.8))
    logomaker.Logo(frame, ax=ax)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("position")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_heatmap(scores: np.ndarray, path: str | os.PathLike, labels: list[str] | None = None,
                 alphabet: str = ALPHABET) -> Path:
    """Attribution per position (sum over bases) for several sequences: (N, L, 4) -> N-row heat map."""
    plt = _pyplot()
    per_position = np.asarray(scores).sum(axis=-1)
    lim = float(np.abs(per_position).max()) or 1.0
    fig, ax = plt.subplots(figsize=(12, 0.35 * len(per_position) + 1.2))
    im = ax.imshow(per_position, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_yticks(range(len(per_position)), labels or [str(i) for i in range(len(per_position))], fontsize=7)
    ax.set_xlabel("position")
    fig.colorbar(im, ax=ax, label="grad x input")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def top_indices(prob: np.ndarray, top: int) -> np.ndarray:
    """Indices of the `top` highest predictions, highest first (the notebook's selection)."""
    return np.argsort(-np.asarray(prob).reshape(-1), kind="mergesort")[:top]
