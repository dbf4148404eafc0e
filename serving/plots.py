"""Figures of attributions, drawn the same way by the CLI, the service and training: sequence logos
(a fast path-per-letter renderer in logomaker's style, or logomaker itself) and heat maps, saved by save_figure().

Logos are drawn to be read: a long one (more than ZOOM_AFTER positions) shows its strongest ZOOM_NT positions
magnified (~20 px per letter) above the whole track, where that stretch is shaded."""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import numpy as np

from serving.dna import ALPHABET

DPI = 110
ZOOM_NT = 60  # positions magnified above the whole track of a long logo
ZOOM_AFTER = 80  # logos longer than this get the magnified stretch; shorter ones are drawn wide enough to read
WIDE_IN = 12.0  # figure width (inches) of long logos: ZOOM_NT letters of ~20 px at DPI


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


def draw_logo(ax, scores: np.ndarray, alphabet: str = ALPHABET, width: float = 0.9, start: int = 0) -> None:
    """Draw scores: (L, K) as a sequence logo on ax, as logomaker does by default (letters above zero stacked
    big on top, below zero flipped, big at the bottom) but as one path per letter: ~50x faster for L=200.
    start: the x of the first position (a stretch of a longer sequence keeps its positions)."""
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
        xs = start + keep[:, None] - width / 2 + verts[None, :, 0] * width
        ys = bottoms[keep, j][:, None] + y * h[:, None]
        path = MplPath(np.stack([xs, ys], axis=-1).reshape(-1, 2), np.tile(codes, len(keep)))
        patch = PathPatch(path, facecolor=CLASSIC_COLOURS.get(letter.upper(), (0.3, 0.3, 0.3)), edgecolor="none",
                          linewidth=0, transform=ax.transData)
        patch.set_in_layout(False)  # limits are set below: no per-patch autoscaling or layout measuring
        ax.add_artist(patch)
    top = max(float(np.where(scores > 0, scores, 0).sum(axis=1).max(initial=0)), 1e-9)
    low = min(float(np.where(scores < 0, scores, 0).sum(axis=1).min(initial=0)), 0.0)
    pad = 0.05 * (top - low)
    ax.set_xlim(start - 1, start + n)
    ax.set_ylim(low - (pad if low < 0 else 0), top + pad)
    ax.axhline(0, color="black", linewidth=0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def strongest_stretch(scores: np.ndarray, width: int = ZOOM_NT) -> int:
    """Start of `width` consecutive positions of scores: (L, K) where a reader of the logo looks first: the stretch
    with the largest total |score|, moved to centre the |score| it holds (a motif sits mid-stretch, not at an edge)."""
    mass = np.abs(np.nan_to_num(np.asarray(scores, np.float64))).sum(axis=1)
    if len(mass) <= width:
        return 0
    total = np.concatenate([[0.0], np.cumsum(mass)])
    best = int(np.argmax(total[width:] - total[:-width]))
    part = mass[best : best + width]
    centre = best + (float(part @ np.arange(width)) / part.sum() if part.sum() > 0 else width / 2)
    return int(min(max(round(centre - width / 2), 0), len(mass) - width))


def logo_figure(scores: np.ndarray, title: str = "", alphabet: str = ALPHABET, ylabel: str = "grad x input",
                engine: str = "fast"):
    """The figure plot_logo saves. scores: (L, K). Up to ZOOM_AFTER positions: one logo, ~20 px per letter.
    Longer: the strongest ZOOM_NT positions (strongest_stretch) magnified on top, the whole track below with that
    stretch shaded; x = 0-based position in the sequence in both."""
    plt = pyplot()
    scores = np.asarray(scores, np.float64)
    n = len(scores)

    def draw(ax, part, start):
        if engine == "logomaker":
            import logomaker
            import pandas as pd

            logomaker.Logo(pd.DataFrame(part, columns=list(alphabet[: part.shape[1]]),
                                        index=np.arange(start, start + len(part))), ax=ax)
        else:
            draw_logo(ax, part, alphabet, start=start)

    if n <= ZOOM_AFTER:
        fig, ax = plt.subplots(figsize=(min(WIDE_IN, max(6.0, n * WIDE_IN / ZOOM_NT)), 2.0))
        draw(ax, scores, 0)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xlabel("position")
        if title:
            ax.set_title(title, fontsize=9)
        return fig
    s = strongest_stretch(scores)
    fig, (zoom, whole) = plt.subplots(2, 1, figsize=(WIDE_IN, 4.2), gridspec_kw={"height_ratios": [2.3, 1]})
    draw(zoom, scores[s : s + ZOOM_NT], s)
    zoom.set_ylabel(ylabel, fontsize=8)
    zoom.set_title((f"{title}: " if title else "") + f"positions {s}-{s + ZOOM_NT - 1} of {n} (the strongest "
                   f"{ZOOM_NT}), magnified; the whole sequence below", fontsize=9)
    draw(whole, scores, 0)
    whole.axvspan(s - 0.5, s + ZOOM_NT - 0.5, color="0.88", zorder=0, linewidth=0)
    whole.set_xlabel("position")
    whole.tick_params(labelsize=7)
    return fig


def plot_logo(scores: np.ndarray, path: str | os.PathLike | IO[bytes], title: str = "", alphabet: str = ALPHABET,
              ylabel: str = "grad x input", engine: str = "fast") -> Path | IO[bytes]:
    """One sequence's scores: (L, 4) -> a sequence logo saved as PNG (a path or a binary stream); a long one with
    its strongest stretch magnified (logo_figure). engine "fast" (draw_logo, well under a second for L=200) or
    "logomaker" (the notebook's own, seconds)."""
    return save_figure(logo_figure(scores, title, alphabet, ylabel, engine), path)


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
