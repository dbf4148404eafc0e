"""In silico saturation mutagenesis: the logit change of every single-base substitution of one sequence
(L x 4, all mutants in one batch), as a TSV and as a figure: importance logo over a substitution heat map."""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import numpy as np

from serving.dna import ALPHABET, SequenceError, codes_to_onehot, length_reason, to_codes
from serving.fasta import read_fasta


def saturation_mutagenesis(predictor, seq: str, rc: bool = False) -> tuple[np.ndarray, float]:
    """Logit change of every single-base substitution of one sequence of the model's length.

    Returns (delta: (L, 4) float32, logit(mutant with base b at position i) - logit(sequence), 0 where b
    is the reference base; reference logit). All L*4 mutants go through the predictor as one batch."""
    L = predictor.length
    codes = to_codes(seq, 0, predictor.alphabet)
    if len(codes) != L:
        raise SequenceError(length_reason(len(codes), L), 0)
    mutants = np.repeat(codes[None], L * 4 + 1, axis=0)  # (4L + 1, L) codes; the last row is the reference
    rows = np.arange(L * 4)
    mutants[rows, rows // 4] = rows % 4
    out = predictor.predict_onehot(codes_to_onehot(mutants), reverse_complement_average=rc)
    ref_logit = float(out["logit"][-1])
    delta = (out["logit"][:-1] - out["logit"][-1]).reshape(L, 4)
    return delta.astype(np.float32), ref_logit


def mean_centred(delta: np.ndarray) -> np.ndarray:
    """(L, 4) -> (L, 4) minus the mean over the 4 bases at each position (the usual ISM logo)."""
    return delta - delta.mean(axis=1, keepdims=True)


def write_mutagenesis(fh: IO[str], delta: np.ndarray, seq: str, alphabet: str = ALPHABET) -> None:
    """TSV: position (1-based), reference base, then one logit-change column per base."""
    fh.write("position\tref\t" + "\t".join(f"delta_logit_{b}" for b in alphabet) + "\n")
    for i, row in enumerate(delta.tolist()):
        fh.write(f"{i + 1}\t{seq[i].upper()}\t" + "\t".join(f"{d:.6g}" for d in row) + "\n")


def reference_importance(delta: np.ndarray, seq: str, alphabet: str = ALPHABET) -> np.ndarray:
    """(L, 4) changes -> (L, 4) zero but at each reference base: minus the mean change of substituting it,
    the observed-base ISM attribution tangermeme and chrombpnet users plot (tall letters = bases that matter)."""
    codes = to_codes(seq, 0, alphabet)
    out = np.zeros_like(delta, dtype=np.float32)
    known = codes < len(alphabet)  # N: no reference base to draw
    out[np.flatnonzero(known), codes[known]] = mean_centred(delta)[np.flatnonzero(known), codes[known]]
    return out


def plot_mutagenesis(delta: np.ndarray, seq: str, path: str | os.PathLike | IO[bytes], title: str = "",
                     alphabet: str = ALPHABET) -> Path | IO[bytes]:
    """PNG of one sequence's ISM, delta: (L, 4): on top the reference bases scaled by their importance
    (reference_importance), below a heat map of every substitution's logit change (blue: binding lost)."""
    from serving.plots import draw_logo, pyplot, save_figure

    plt = pyplot()
    L = len(delta)
    fig = plt.figure(figsize=(max(6.0, L / 20), 3.0))
    logo = fig.add_axes((0.07, 0.47, 0.85, 0.43))
    heat = fig.add_axes((0.07, 0.15, 0.85, 0.27), sharex=logo)
    bar = fig.add_axes((0.93, 0.15, 0.008, 0.27))
    draw_logo(logo, reference_importance(delta, seq, alphabet), alphabet)
    logo.set_ylabel("importance\n(-mean \u0394logit)", fontsize=7)
    logo.tick_params(labelbottom=False, labelsize=7)
    lim = float(np.abs(delta).max()) or 1.0
    im = heat.imshow(np.asarray(delta, np.float32).T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                     interpolation="nearest", extent=(-0.5, L - 0.5, len(alphabet) - 0.5, -0.5))
    heat.set_yticks(range(len(alphabet)), list(alphabet), fontsize=7)
    heat.set_ylabel("to", fontsize=7)
    heat.set_xlabel("position", fontsize=8)
    heat.tick_params(labelsize=7)
    cb = fig.colorbar(im, cax=bar)
    cb.set_label("\u0394logit", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    if title:
        logo.set_title(title, fontsize=9)
    return save_figure(fig, path, layout=False)


def first_record(fasta: str | os.PathLike, rid: str | None = None) -> tuple[str, str]:
    """(id, sequence) of the record `rid` of a FASTA (the first one when rid is None)."""
    for rec in read_fasta(fasta):
        if rid is None or rec.id == rid:
            return rec.id, rec.sequence
    raise ValueError(f"{fasta}: no record {rid!r}" if rid else f"{fasta}: no records")


