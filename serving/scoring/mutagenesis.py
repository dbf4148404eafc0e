"""In silico saturation mutagenesis: the logit change of every single-base substitution of one sequence
(L x 4, all mutants in one batch), as a TSV and as a logo of the mean-centred changes."""
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


def plot_mutagenesis(delta: np.ndarray, path: str | os.PathLike, title: str = "") -> Path:
    """Logo PNG of the mean-centred (L, 4) logit changes (serving.plots; no TensorFlow)."""
    from serving.plots import plot_logo

    return plot_logo(mean_centred(delta), path, title=title, ylabel="ISM delta logit (mean-centred)")


def first_record(fasta: str | os.PathLike, rid: str | None = None) -> tuple[str, str]:
    """(id, sequence) of the record `rid` of a FASTA (the first one when rid is None)."""
    for rec in read_fasta(fasta):
        if rid is None or rec.id == rid:
            return rec.id, rec.sequence
    raise ValueError(f"{fasta}: no record {rid!r}" if rid else f"{fasta}: no records")


