"""Logos: the fast renderer stacks letters as logomaker does, and the ISM figure shows the reference bases."""
from __future__ import annotations

import io

import numpy as np
import pytest

from serving import plots
from serving.scoring import mutagenesis as mu


def _letter_extents(scores):
    plt = plots.pyplot()
    fig, ax = plt.subplots()
    plots.draw_logo(ax, scores)
    out = {}
    for patch in ax.patches:
        colour = tuple(np.round(patch.get_facecolor()[:3], 2))
        letter = next(b for b, c in plots.CLASSIC_COLOURS.items() if tuple(np.round(c, 2)) == colour)
        v = patch.get_path().vertices
        out[letter] = (round(float(v[:, 1].min()), 6), round(float(v[:, 1].max()), 6),
                       round(float(v[:, 0].mean())))
    plt.close(fig)
    return out


def test_letters_stack_big_on_top_and_below_zero():
    ext = _letter_extents(np.array([[0.5, -0.2, 0.3, -0.1]]))
    assert ext["G"][:2] == (0.0, 0.3)  # the smaller positive sits on zero
    assert ext["A"][:2] == (0.3, 0.8)  # the larger on top of it
    assert ext["T"][:2] == (-0.1, 0.0)  # the smaller negative just below zero
    assert ext["C"][:2] == (-0.3, -0.1)  # the larger at the bottom
    assert {e[2] for e in ext.values()} == {0}  # all at position 0


def test_zero_scores_draw_nothing_and_positions_are_columns():
    scores = np.zeros((5, 4))
    scores[3, 2] = 1.0
    ext = _letter_extents(scores)
    assert list(ext) == ["G"] and ext["G"][2] == 3


def test_reference_importance_is_minus_the_mean_change_at_the_reference_base():
    rng = np.random.default_rng(0)
    seq = "ACGTN"
    delta = rng.normal(size=(5, 4)).astype(np.float32)
    for i, b in enumerate("ACGT"):
        delta[i, "ACGT".index(b)] = 0.0
    out = mu.reference_importance(delta, seq)
    for i, b in enumerate("ACGT"):
        j = "ACGT".index(b)
        assert out[i, j] == pytest.approx(-delta[i].mean(), abs=1e-6)
        assert np.count_nonzero(out[i]) == 1
    assert not out[4].any()  # N: no reference base


@pytest.mark.parametrize("engine", ["fast", "logomaker"])
def test_logo_png(engine):
    buf = plots.plot_logo(np.random.default_rng(1).normal(size=(30, 4)), io.BytesIO(), title="t", engine=engine)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ism_figure_is_a_png_with_logo_and_heat_map(tmp_path):
    delta = np.random.default_rng(2).normal(size=(40, 4)).astype(np.float32)
    path = mu.plot_mutagenesis(delta, "ACGT" * 10, tmp_path / "ism.png", title="x: ISM")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _letter_px(ax, positions: int) -> float:
    """Width in pixels of one position of a logo axis, as saved (at plots.DPI)."""
    return ax.get_window_extent().width / positions * plots.DPI / ax.figure.dpi


def test_a_long_logo_magnifies_its_strongest_stretch_above_the_whole_track():
    rng = np.random.default_rng(3)
    scores = rng.normal(0, 0.01, (200, 4))
    scores[131:150] += np.eye(4)[rng.integers(0, 4, 19)]  # a strong motif at 131-149
    s = plots.strongest_stretch(scores)
    assert abs((s + plots.ZOOM_NT / 2) - 140) <= 3  # the motif in the middle of the magnified stretch
    fig = plots.logo_figure(scores, title="t")
    fig.tight_layout()  # as save_figure lays it out
    fig.canvas.draw()
    zoom, whole = fig.axes
    assert zoom.get_xlim() == (s - 1, s + plots.ZOOM_NT)  # the magnified stretch keeps its positions
    assert whole.get_xlim() == (-1, 200)
    assert f"positions {s}-{s + plots.ZOOM_NT - 1} of 200" in zoom.get_title()
    assert _letter_px(zoom, plots.ZOOM_NT + 1) >= 18  # readable letters (the old single track: ~5 px)
    assert _letter_px(zoom, plots.ZOOM_NT + 1) >= 3 * _letter_px(whole, 201)
    plots.pyplot().close(fig)


def test_a_short_logo_is_drawn_once_with_readable_letters():
    fig = plots.logo_figure(np.random.default_rng(4).normal(size=(40, 4)))
    fig.tight_layout()
    fig.canvas.draw()
    assert len(fig.axes) == 1 and _letter_px(fig.axes[0], 41) >= 15
    plots.pyplot().close(fig)
