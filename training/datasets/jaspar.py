"""Position frequency matrices in JASPAR format: the shipped CTCF matrix MA0139.1 (and any other file), as
(W, 4) counts and per-position probabilities in ACGT order."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np

from serving.dna import ALPHABET


def load_jaspar(path: str | os.PathLike | None = None) -> tuple[str, np.ndarray]:
    """A JASPAR count matrix -> (name, counts (W, 4) in ACGT order). Default: CTCF MA0139.1 (shipped)."""
    if path is None:
        text = resources.files("training").joinpath("motifs/MA0139.1.jaspar").read_text()
    else:
        text = Path(path).read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    name = lines[0].lstrip(">").strip()
    rows = {}
    for ln in lines[1:]:
        base, _, rest = ln.partition("[")
        rows[base.strip().upper()] = [float(v) for v in rest.rstrip("]").split()]
    counts = np.array([rows[b] for b in ALPHABET]).T
    return name, counts


def motif_probabilities(counts: np.ndarray, pseudocount: float = 0.5) -> np.ndarray:
    """(W, 4) counts -> (W, 4) per-position base probabilities."""
    c = counts + pseudocount
    return c / c.sum(axis=1, keepdims=True)


