"""Figures of attributions, drawn the same way by the CLI, the service and training: sequence logos
(a fast path-per-letter renderer in logomaker's style, or logomaker itself) and heat maps, saved by save_figure()."""
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


def save_figure(fig, path: str | os.PathLike | IO[bytes], layout: bool = True):
    """Lay out (unless the figure placed its axes itself), write as PNG (to a path or a binary stream) and
    close a figure; returns `path` (a Path for paths)."""
    plt = pyplot()
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return Path(path) if isinstance(path, (str, os.PathLike)) else path


# logomaker's "classic" colours, so the fast logos read like the notebook's.
CLASSIC_COLOURS = {"A": (0.0, 0.5, 0.0), "C": (0.0, 0.0, 1.0), "G": (1.0, 0.65, 0.0), "T": (1.0, 0.0, 0.0),
                   "U": (1.0, 0.0, 0.0)}
_GLYPHS: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _glyph(letter: str) -> tuple[np.ndarray, np.ndarray]:
    """A letter's outline scaled to the unit box: (vertices (V, 2), path codes (V,)), made once per process."""
    if letter not in _GLYPHS:
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import TextPath

        from matplotlib.path import Path as MplPath

        text = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
        # Curves flattened to polygons: extents and rendering of straight segments cost no Bezier maths.
        polygons = text.to_polygons(closed_only=True)
        v = np.concatenate(polygons)
        codes = np.concatenate([[MplPath.MOVETO] + [MplPath.LINETO] * (len(p) - 2) + [MplPath.CLOSEPOLY]
                                for p in polygons]).astype(MplPath.code_type)
        lo, hi = v.min(axis=0), v.max(axis=0)
        _GLYPHS[letter] = ((v - lo) / np.where(hi > lo, hi - lo, 1.0), codes)
    return _GLYPHS[letter]


def draw_logo(ax, scores: np.ndarray, alphabet: str = ALPHABET, width: float = 0.9) -> None:
    """Draw scores: (L, K) as a sequence logo on ax, as logomaker does by default (letters above zero stacked
    big on top, below zero flipped, big at the bottom) but as one path per letter: ~50x faster for L=200."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    scores = np.nan_to_num(np.asarray(scores, np.float64))
    n, k = scores.shape
    bottoms = np.zeros_like(scores)
    for sign in (1, -1):  # cumulative stacks, smallest magnitude nearest zero
        part = np.where(sign * scores > 0, scores, 0.0)
        order = np.argsort(np.abs(part), axis=1, kind="stable")
        ranked = np.take_along_axis(part, order, axis=1)
        below = np.cumsum(ranked, axis=1) - ranked
        np.put_along_axis(bottoms, order, np.where(ranked != 0, below, np.take_along_axis(bottoms, order, 1)), 1)
    for j, letter in enumerate(alphabet[:k]):
        keep = np.flatnonzero(scores[:, j])
        if not len(keep):
            continue
        verts, codes = _glyph(letter.upper())
        h = scores[keep, j]
        y = np.where(h[:, None] > 0, verts[None, :, 1], 1.0 - verts[None, :, 1])  # flipped below zero
        xs = keep[:, None] - width / 2 + verts[None, :, 0] * width
        ys = bottoms[keep, j][:, None] + y * h[:, None]
        path = MplPath(np.stack([xs, ys], axis=-1).reshape(-1, 2), np.tile(codes, len(keep)))
        patch = PathPatch(path, facecolor=CLASSIC_COLOURS.get(letter.upper(), (0.3, 0.3, 0.3)), edgecolor="none",
                          linewidth=0, transform=ax.transData)
        patch.set_in_layout(False)  # limits are set below: no per-patch autoscaling or layout measuring
        ax.add_artist(patch)
    top = max(float(np.where(scores > 0, scores, 0).sum(axis=1).max(initial=0)), 1e-9)
    low = min(float(np.where(scores < 0, scores, 0).sum(axis=1).min(initial=0)), 0.0)
    pad = 0.05 * (top - low)
    ax.set_xlim(-1, n)
    ax.set_ylim(low - (pad if low < 0 else 0), top + pad)
    ax.axhline(0, color="black", linewidth=0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def plot_logo(scores: np.ndarray, path: str | os.PathLike | IO[bytes], title: str = "", alphabet: str = ALPHABET,
              ylabel: str = "grad x input", engine: str = "fast") -> Path | IO[bytes]:
    """One sequence's scores: (L, 4) -> a sequence logo saved as PNG (a path or a binary stream). engine
    "fast" (draw_logo, well under a second for L=200) or "logomaker" (the notebook's own, seconds)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, len(scores) / 20), 1.8))
    if engine == "logomaker":
        import logomaker
        import pandas as pd

        logomaker.Logo(pd.DataFrame(np.asarray(scores, np.float64), columns=list(alphabet)), ax=ax)
    else:
        draw_logo(ax, scores, alphabet)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_xlabel("position")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def warm_up() -> None:
    """Load matplotlib, the font and the letter outlines now (~1 s once per process), not in the first request."""
    import io

    plot_logo(np.eye(len(ALPHABET))[np.arange(8) % len(ALPHABET)], io.BytesIO())


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
