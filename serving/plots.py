"""Figures of attributions, drawn the same way by the CLI, the service and training: sequence logos
(logomaker) and per-position heat maps, saved as PNG through one save_figure()."""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import numpy as np

from serving.dna import ALPHABET

DPI = 110


def pyplot():
    """matplotlib.pyplot on the Agg (file-only) back end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike | IO[bytes]):
    """Lay out, write as PNG (to a path or a binary stream) and close a figure; returns `path` (a Path for paths)."""
    plt = pyplot()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return Path(path) if isinstance(path, (str, os.PathLike)) else path


def plot_logo(scores: np.ndarray, path: str | os.PathLike, title: str = "", alphabet: str = ALPHABET,
              ylabel: str = "grad x input") -> Path:
    """One sequence's scores: (L, 4) -> a logomaker logo (letters above/below zero) saved as PNG."""
    import logomaker
    import pandas as pd

    plt = pyplot()
    frame = pd.DataFrame(np.asarray(scores, np.float64), columns=list(alphabet))
    fig, ax = plt.subplots(figsize=(max(6.0, len(frame) / 20), 1.8))
    logomaker.Logo(frame, ax=ax)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("position")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def plot_heatmap(scores: np.ndarray, path: str | os.PathLike, labels: list[str] | None = None,
                 colorbar_label: str = "grad x input") -> Path:
    """Attribution per position (sum over bases) of several sequences: scores (N, L, 4) -> N-row heat map."""
    plt = pyplot()
    per_position = np.asarray(scores).sum(axis=-1)
    lim = float(np.abs(per_position).max()) or 1.0
    fig, ax = plt.subplots(figsize=(12, 0.35 * len(per_position) + 1.2))
    im = ax.imshow(per_position, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_yticks(range(len(per_position)), labels or [str(i) for i in range(len(per_position))], fontsize=7)
    ax.set_xlabel("position")
    fig.colorbar(im, ax=ax, label=colorbar_label)
    return save_figure(fig, path)
