"""Every single-base substitution of a long sequence, each scored on the window centred on it (the VCF definition of
serving.scoring.variants: the variant's base at index L // 2), computed once per base instead of once per window.

For a stretch of bases, the convolution runs once over the whole stretch; each window's pooled bins are running
maxima over it, corrected exactly at the window's own edges (the 'same' zero padding: truncated kernels at its first
and last positions); the dense layer then gives every reference window's hidden units. A substitution at the centre
changes the convolution only at the K positions the kernel reaches and only the pooled bins holding them, so each
of the 3 alternatives costs a few thousand operations: new maxima of those bins (their untouched positions' running
maxima and the changed values), through their rows of the dense layer (fastISM's idea, along a genome).

centred_logits(...) is exact (float32 rounding) and needs the model folder's layers.npz (serving.layers);
per_window_logits(...) scores the same windows one by one through any predictor: the fallback for a folder without
layers.npz, and the reference the tests hold the engine to.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from serving.dna import average_strands


def windows_fit(n: int, centres: np.ndarray, length: int) -> np.ndarray:
    """(M,) bool: whether the window of `length` centred on each centre (its start centre - length // 2) lies inside
    a stretch of n bases."""
    start = np.asarray(centres, np.int64) - length // 2
    return (start >= 0) & (start + length <= n)


def _check(n: int, centres: np.ndarray, length: int) -> np.ndarray:
    centres = np.asarray(centres, np.int64)
    bad = ~windows_fit(n, centres, length)
    if bad.any():
        c = int(centres[np.argmax(bad)])
        raise ValueError(f"the {length} bp window centred on offset {c} is not inside the {n} bp stretch")
    return centres


def per_window_logits(predictor, codes: np.ndarray, centres: np.ndarray, rc: bool = False
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Window by window through predictor.predict_codes (or predict_onehot): codes (n,) uint8 (serving.dna: 0-3
    ACGT, 4 N), centres (M,) int64 offsets into codes -> (reference logits (M,), logits (M, 4) with base b at the
    centre; column b = the reference base's holds the reference logit) float32. rc: both strands' logits averaged."""
    from serving.dna import codes_to_onehot

    codes = np.asarray(codes, np.uint8)
    L = predictor.length
    centres = _check(len(codes), centres, L)
    m = len(centres)
    windows = np.lib.stride_tricks.sliding_window_view(codes, L)[centres - L // 2]  # (M, L)
    every = np.repeat(windows[:, None, :], 5, axis=1)  # (M, 5, L): the reference, then base 0..3 at the centre
    every[:, 1:, L // 2] = np.arange(4, dtype=np.uint8)
    flat = every.reshape(m * 5, L)
    if hasattr(predictor, "predict_codes"):
        logit = predictor.predict_codes(flat, reverse_complement_average=rc)["logit"]
    else:
        logit = predictor.predict_onehot(codes_to_onehot(flat), reverse_complement_average=rc)["logit"]
    logit = np.asarray(logit, np.float32).reshape(m, 5)
    return logit[:, 0].copy(), np.ascontiguousarray(logit[:, 1:])


def centred_logits(layers, codes: np.ndarray, centres: np.ndarray, rc: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
    """As per_window_logits, computed incrementally from the model's layers (serving.layers.Layers)."""
    raise NotImplementedError  # being written: the engine


_NOTED: set[str] = set()


def snv_logits(predictor, codes: np.ndarray, centres: np.ndarray, rc: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """Every base at each centre, on the window centred there: codes (n,) uint8, centres (M,) int64 offsets into
    codes (each window inside codes: ValueError otherwise) -> (reference logits (M,), logits (M, 4)) float32.
    Incremental (centred_logits) where the predictor's model folder has layers.npz, else window by window through
    the predictor (said once per folder, with the command that adds the engine's files)."""
    from serving.substitutions import layers_for

    layers = layers_for(predictor)
    if layers is not None and layers.length == predictor.length and supports(layers):
        return centred_logits(layers, codes, centres, rc)
    folder = str(getattr(predictor, "model_dir", None))
    if layers is None and folder != "None" and folder not in _NOTED:
        from serving.console import say

        _NOTED.add(folder)
        say(f"note: {folder} has no layers.npz: every substitution is scored on its own window (slower); add it "
            f"with: bindcnn export --model {folder}")
    return per_window_logits(predictor, codes, centres, rc)


def supports(layers) -> bool:
    """Whether centred_logits applies to this architecture (the bins a centre substitution touches lie clear of
    the window's edges)."""
    return False  # being written: the engine


__all__ = ["centred_logits", "per_window_logits", "snv_logits", "supports", "windows_fit"]
