"""Variant effects on a scale: the empirical p-value of a delta_logit against the model folder's null of random
single-base substitutions (null_effects.npy, drawn once per model by training/null_effects.py at export, or by
`bindcnn null --model DIR` for an older folder).

p = (1 + #{null >= |delta|}) / (1 + n): the share of random substitutions at the centre of the model's own
background windows whose |delta_logit| is at least as large. A model-relative rarity, not a clinical significance.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from serving.console import say_once

NULL_FILE = "null_effects.npy"  # (2, n) float32: |delta_logit| sorted ascending; row 0 forward, row 1 rc-averaged
METADATA_KEY = "null_effects"
ROWS = ("forward", "reverse_complement_average")
ADD_NULL = "bindcnn null --model {}"  # the command that adds a null to an older folder


def has_null(metadata: dict[str, Any]) -> bool:
    """True when the model folder's metadata lists a null of substitution effects (and its file is checksummed)."""
    spec = metadata.get(METADATA_KEY)
    return isinstance(spec, dict) and spec.get("file") in metadata.get("files", {})


def load_null(model_dir: str | Path, metadata: dict[str, Any]) -> np.ndarray | None:
    """The folder's null: (2, n) float32 sorted |delta_logit| (rows: ROWS), or None when it has none. The file's
    sha256 is checked with the folder's (serving.artifact.verify_model_dir), not here."""
    if not has_null(metadata):
        return None
    null = np.load(Path(model_dir) / metadata[METADATA_KEY]["file"], allow_pickle=False)
    if null.ndim != 2 or null.shape[0] != len(ROWS) or null.shape[1] == 0:
        raise ValueError(f"{model_dir}: {NULL_FILE} has shape {null.shape}, expected ({len(ROWS)}, n); add it again "
                         f"with: {ADD_NULL.format(model_dir)}")
    return null


def p_values(null: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """null: (n,) sorted |delta_logit| of random substitutions; delta: (V,) delta_logits -> (V,) float64
    p = (1 + #{null >= |delta|}) / (1 + n), NaN where delta is NaN. The smallest p is 1 / (1 + n)."""
    delta = np.abs(np.asarray(delta, np.float64))
    n = len(null)
    at_least = n - np.searchsorted(np.asarray(null, np.float64), delta, side="left")
    p = (1.0 + at_least) / (1.0 + n)
    return np.where(np.isnan(delta), np.nan, p)


_NULLS: dict[int, Any] = {}


def null_for(predictor) -> np.ndarray | None:
    """The (2, n) null of an in-process predictor's model folder (loaded once per predictor), or None: a predictor
    without a model folder (a service's client, toys) or a folder without a null (said once per folder, with the
    command that adds one)."""
    from serving.engine import per_predictor

    return per_predictor(_NULLS, predictor, lambda: _load_for(predictor))


def _load_for(predictor) -> np.ndarray | None:
    metadata, model_dir = getattr(predictor, "metadata", None), getattr(predictor, "model_dir", None)
    if not isinstance(metadata, dict) or model_dir is None:
        return None
    null = load_null(model_dir, metadata)
    if null is None:
        say_once(f"no null: {model_dir}", f"note: {model_dir} has no null of substitution effects ({NULL_FILE}): "
                 f"variant p-values are NA; add it with: {ADD_NULL.format(model_dir)}")
    return null


def predictor_p_values(predictor, delta: np.ndarray, rc: bool = False) -> np.ndarray:
    """delta: (V,) delta_logits scored by `predictor` (rc: both strands averaged) -> (V,) p-values against its
    folder's null of the same strand mode, all NaN when it has none (null_for)."""
    null = null_for(predictor)
    if null is None:
        return np.full(len(delta), np.nan)
    return p_values(null[ROWS.index("reverse_complement_average") if rc else 0], delta)


__all__ = ["ADD_NULL", "METADATA_KEY", "NULL_FILE", "ROWS", "has_null", "load_null", "null_for", "p_values",
           "predictor_p_values"]
