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
