"""Position frequency matrices in JASPAR format: the shipped CTCF matrix MA0139.1, any other file, or any JASPAR
CORE vertebrate matrix from pyjaspar's offline database (the train extra; no network), as (W, 4) counts and
per-position probabilities in ACGT order."""
from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import numpy as np

from serving.dna import ALPHABET


JASPAR_RELEASE = "JASPAR2024"  # the release `synthetic --motif` reads (as `bindcnn motifs` does by default)


def load_jaspar(path: str | os.PathLike | None = None) -> tuple[str, np.ndarray]:
    """A JASPAR count matrix -> (name, counts (W, 4) in ACGT order). Default: CTCF MA0139.1 (shipped)."""
    if path is None:
        text = resources.files("training").joinpath("motifs/MA0139.1.jaspar").read_text()
    else:
        text = Path(path).read_text()
    return parse_jaspar(text)


def parse_jaspar(text: str) -> tuple[str, np.ndarray]:
    """JASPAR-format text (">MA0139.1 CTCF" then rows "A [ counts ]") -> (name, counts (W, 4) in ACGT order)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    name = lines[0].lstrip(">").strip()
    rows = {}
    for ln in lines[1:]:
        base, _, rest = ln.partition("[")
        rows[base.strip().upper()] = [float(v) for v in rest.rstrip("]").split()]
    counts = np.array([rows[b] for b in ALPHABET]).T
    return name, counts


def jaspar_text(name: str, counts: np.ndarray) -> str:
    """(name, counts (W, 4) ACGT) -> JASPAR-format text that parse_jaspar reads back exactly."""
    rows = [f"{b} [ " + " ".join(repr(float(v)) for v in counts[:, i]) + " ]" for i, b in enumerate(ALPHABET)]
    return "\n".join([f">{name}"] + rows) + "\n"


def fetch_jaspar(matrix_id: str, release: str = JASPAR_RELEASE) -> tuple[str, np.ndarray]:
    """A JASPAR CORE vertebrate matrix by ID, with version (MA0138.2) or without (MA0138: the release's latest
    version), from pyjaspar's offline database -> ("MA0138.3 REST", counts (W, 4) in ACGT order).
    Raises ValueError naming the ID when the release holds no such matrix or it is not a vertebrate CORE one."""
    import warnings

    try:
        from pyjaspar import jaspardb
    except ImportError:
        raise ValueError("JASPAR matrices by ID need pyjaspar (the train extra): pip install -e '.[train]'") from None
    wanted = matrix_id.strip().upper()
    if not re.fullmatch(r"MA\d{4}(\.\d+)?", wanted):
        raise ValueError(f"{matrix_id!r} is not a JASPAR CORE matrix ID (MA followed by 4 digits, optionally "
                         ".version, e.g. MA0138 or MA0138.2)")
    with warnings.catch_warnings():  # pyjaspar warns, then returns None, for an unknown ID
        warnings.simplefilter("ignore")
        motif = jaspardb(release=release).fetch_motif_by_id(wanted)
    if motif is None:
        raise ValueError(f"{release} (pyjaspar, offline) has no matrix {wanted}; find IDs at "
                         "https://jaspar.elixir.no/ (CORE, vertebrates)")
    if motif.collection != "CORE" or "vertebrates" not in (motif.tax_group or []):
        raise ValueError(f"{motif.matrix_id} {motif.name} is {motif.collection} / {', '.join(motif.tax_group or [])}; "
                         "the built-in sets plant JASPAR CORE vertebrate matrices")
    counts = np.array([motif.counts[b] for b in ALPHABET], np.float64).T
    return f"{motif.matrix_id} {motif.name}", counts


def motif_probabilities(counts: np.ndarray, pseudocount: float = 0.5) -> np.ndarray:
    """(W, 4) counts -> (W, 4) per-position base probabilities."""
    c = counts + pseudocount
    return c / c.sum(axis=1, keepdims=True)


