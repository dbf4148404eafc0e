"""Single-base substitutions computed incrementally (numpy over layers.npz): a substitution at position q changes the
convolution only at the K positions whose kernel reaches q, and only the pooled bins holding them, so each of the
3L mutants of a window costs a few thousand operations instead of a whole forward pass (fastISM's idea).

Exact: the changed convolution values are the reference ones plus the kernel taps' difference; a changed bin's max is
the max of its unchanged positions (prefix and suffix maxima within the bin) and the changed ones; the dense head is
then applied to every mutant's bins. Used by serving.scoring.mutagenesis (in silico mutagenesis).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from serving.dna import codes_to_onehot
from serving.layers import LAYERS_FILE, Layers, one_blas_thread

METADATA_KEY = "layers"
CHUNK = 32  # sequences per numpy pass (~10 MB of temporaries for the notebook CNN; larger passes measured faster)
THREADS = min(4, os.cpu_count() or 1)  # threads the passes are spread over


@lru_cache(maxsize=8)
def _plan(width: int, left: int, pool: int, length: int) -> dict[str, np.ndarray]:
    """Static indices for a window of `length`. A base at q reaches the K positions p = q + left - k (tap k); along
    k they fall into a few consecutive bins, 'slots' (slot 0: the bin of tap 0, the highest position). Per slot s:
    member (S, L, K) where tap k of q lies in slot s and in a pooled position; split (L,): slot 0's taps are
    0 .. split - 1; bin, used (S, L): its bin and whether it holds any pooled position; prefix / suffix (S, L):
    where the bin's running max of its untouched positions before / after the touched ones is read (-1: none)."""
    pooled = length // pool * pool
    pos = np.arange(length)[:, None] + left - np.arange(width)[None, :]  # (L, K)
    valid = (pos >= 0) & (pos < pooled)
    bins = np.clip(pos, 0, pooled - 1) // pool  # (L, K), non-increasing along k
    slot = bins[:, :1] - bins  # 0, 1, ...: which of q's bins tap k falls in
    n_slots = int(slot.max()) + 1
    plan = {"member": valid[None] & (slot[None] == np.arange(n_slots)[:, None, None]),
            "bin": bins[:, :1].T - np.arange(n_slots)[:, None]}
    plan["split"] = (slot == 0).sum(axis=1)  # taps 0 .. split - 1 are slot 0's (slots are runs of taps)
    plan["used"] = plan["member"].any(axis=2) & (plan["bin"] >= 0)
    plan["bin"] = np.where(plan["used"], plan["bin"], 0)
    touched = np.where(plan["member"], pos[None], -1)
    a = np.where(touched >= 0, touched, length).min(axis=2)  # first / last touched position of the slot's bin
    b = touched.max(axis=2)
    first, last = plan["bin"] * pool, plan["bin"] * pool + pool - 1
    plan["prefix"] = np.where(plan["used"] & (a > first), a - 1, -1)
    plan["suffix"] = np.where(plan["used"] & (b < last), b + 1, -1)
    return plan


def mutant_logits(layers: Layers, codes: np.ndarray, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """codes: (N, L) uint8 (0-3 ACGT, 4 N) -> (mutants (N, L, 4) float32: the logit with base b at position q, the
    reference logit where b is the reference base; reference (N,) float32). CHUNK sequences per pass, passes spread
    over `threads` threads (default THREADS; numpy releases the GIL in its array loops)."""
    codes = np.asarray(codes, np.uint8)
    out = np.empty((*codes.shape, 4), np.float32)
    ref = np.empty(len(codes), np.float32)

    def one(i: int) -> None:
        out[i:i + CHUNK], ref[i:i + CHUNK] = _chunk(layers, codes[i:i + CHUNK])

    starts = range(0, len(codes), CHUNK)
    threads = min(threads or THREADS, len(starts))
    if threads <= 1:
        for i in starts:
            one(i)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with one_blas_thread(), ThreadPoolExecutor(threads, thread_name_prefix="bindcnn-ism") as pool:
            list(pool.map(one, starts))
    return out, ref


def _chunk(layers: Layers, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, length = codes.shape
    k, p, t, f = layers.width, layers.pool, layers.bins, layers.filters
    right = k - 1 - layers.pad_left
    plan = _plan(k, layers.pad_left, p, length)
    conv = layers.conv_same(codes_to_onehot(codes))  # (N, L, F) before ReLU
    in_bins = np.maximum(conv[:, :t * p], 0).reshape(n, t, p, f)
    pooled = in_bins.max(axis=2)  # (N, T, F)
    prefix = np.maximum.accumulate(in_bins, axis=2).reshape(n, t * p, f)  # bin-wise running maxima
    suffix = np.maximum.accumulate(in_bins[:, :, ::-1], axis=2)[:, :, ::-1].reshape(n, t * p, f)
    hidden_ref = pooled.reshape(n, t * f) @ layers.dense_w + layers.dense_b  # (N, D) before ReLU
    ref = layers.head(pooled.reshape(n, t * f))
    taps = np.concatenate([layers.kernel, np.zeros((k, 1, f), np.float32)], axis=1)  # (K, 5, F); code 4 (N): 0
    padded = np.full((n, length + k - 1, f), -np.inf, np.float32)  # -inf: positions no bin pools
    padded[:, right:right + t * p] = conv[:, :t * p]  # padded[:, q + K-1-k] = conv at q + left - k
    acc = _slot_maxima(plan, layers.kernel, taps, codes, padded)  # (S, N, L, 4, F): each slot's max over its taps
    hidden = np.broadcast_to(hidden_ref[:, None, None, :], (n, length, 4, hidden_ref.shape[1])).copy()
    for s in range(len(acc)):
        keep = np.zeros((n, length, f), np.float32)  # the bin's untouched positions (ReLU'd, >= 0)
        for where, table in (("prefix", prefix), ("suffix", suffix)):
            has = plan[where][s] >= 0
            keep[:, has] = np.maximum(keep[:, has], table[:, plan[where][s][has]])
        # the bin's new max (ReLU included: keep >= 0) minus its old one, through the dense layer, bin by bin
        diff = np.maximum(acc[s], keep[:, :, None, :]) - pooled[:, plan["bin"][s]][:, :, None, :]
        for j in range(t):
            qs = np.flatnonzero(plan["used"][s] & (plan["bin"][s] == j))
            if len(qs):
                hidden[:, qs] += diff[:, qs] @ layers.dense_w[j * f:(j + 1) * f]
    mutants = (np.maximum(hidden, 0) @ layers.logit_w)[..., 0] + layers.logit_b[0]
    known = codes < 4
    mutants[known, codes[known]] = np.repeat(ref, known.sum(axis=1))  # the reference base: no change
    return mutants.astype(np.float32), ref


def _slot_maxima(plan: dict[str, np.ndarray], kernel: np.ndarray, taps: np.ndarray, codes: np.ndarray,
                 padded: np.ndarray) -> np.ndarray:
    """For every mutant (q, b) and slot, the max over the slot's taps of the changed convolution value (reference
    convolution at q + left - k, minus the reference base's tap taps[k, code], plus base b's tap kernel[k, b]):
    (S, N, L, 4, F) float32, -inf where a slot has no pooled position. Tap by tap over (N, L, 4, F) arrays that stay
    in cache (not one (N, L, K, 4, F) array). With at most two slots (kernel <= pool + 1), slot 0 is a prefix of the
    taps and slot 1 the rest: one running max over the taps, each row's kept and restarted where its slot 1 begins."""
    k = kernel.shape[0]
    n, length = codes.shape
    member = plan["member"]
    acc = np.full((len(member), n, length, 4, kernel.shape[-1]), -np.inf, np.float32)
    value = np.empty(acc.shape[1:], np.float32)
    running = np.empty_like(value)

    base = np.empty((n, length, kernel.shape[-1]), np.float32)

    def tap_value(tap: int) -> np.ndarray:  # base b at q, seen by tap `tap` at q + left - tap
        np.subtract(padded[:, k - 1 - tap:k - 1 - tap + length], taps[tap].take(codes, axis=0), out=base)
        return np.add(base[:, :, None, :], kernel[tap], out=value)

    if len(member) > 2:  # taps of a slot are a middle range for some q: masked maxima
        for tap in range(k):
            tap_value(tap)
            for s in range(len(member)):
                np.maximum(acc[s], value, out=acc[s], where=member[s, :, tap, None, None])
        return acc
    split = plan["split"]  # one sweep: slot 0's max is kept (and the running max restarted) where slot 1 begins
    running.fill(-np.inf)
    for tap in range(k):
        rows = np.flatnonzero(split == tap)
        if len(rows):
            acc[0][:, rows] = running[:, rows]
            running[:, rows] = -np.inf
        np.maximum(running, tap_value(tap), out=running)
    ends = split == k  # slot 0 holds every tap
    acc[len(member) - 1][:, ~ends] = running[:, ~ends]
    acc[0][:, ends] = running[:, ends]
    return acc


def reverse_strand(codes: np.ndarray) -> np.ndarray:
    """(N, L) codes -> the reverse complements' codes (N stays N)."""
    return np.ascontiguousarray(np.where(codes < 4, 3 - codes, codes)[:, ::-1])


def mutagenesis(layers: Layers, codes: np.ndarray, rc: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """codes: (N, L) uint8 -> (delta (N, L, 4) float32: logit(mutant) - logit(reference), 0 at the reference base;
    reference logits (N,) float32). rc: both strands' logits averaged, as every predictor's reverse_complement_average
    (mutant q -> b on the forward strand is mutant L-1-q -> complement(b) on the reverse one)."""
    if rc:  # both strands in one call, so that their passes share the threads
        both, both_ref = mutant_logits(layers, np.concatenate([codes, reverse_strand(codes)]))
        n = len(codes)
        mutants = ((both[:n] + both[n:, ::-1, ::-1]) / 2).astype(np.float32)
        ref = ((both_ref[:n] + both_ref[n:]) / 2).astype(np.float32)
    else:
        mutants, ref = mutant_logits(layers, codes)
    delta = mutants - ref[:, None, None]
    known = codes < 4
    delta[known, codes[known]] = 0.0
    return delta.astype(np.float32), ref


_LAYERS: dict[int, Any] = {}


def has_layers(metadata: dict[str, Any]) -> bool:
    """True when the model folder's metadata lists layers.npz (exported by this version of training/export.py)."""
    spec = metadata.get(METADATA_KEY)
    return isinstance(spec, dict) and spec.get("file") in metadata.get("files", {})


def layers_for(predictor) -> Layers | None:
    """The weights of an in-process predictor's model folder (loaded once per predictor; its checksum was verified
    with the folder), or None: a predictor without a model folder, or a folder exported before layers.npz existed."""
    from serving.engine import per_predictor

    def load() -> Layers | None:
        metadata, model_dir = getattr(predictor, "metadata", None), getattr(predictor, "model_dir", None)
        if isinstance(metadata, dict) and model_dir is not None and has_layers(metadata):
            return Layers.load(Path(model_dir) / metadata[METADATA_KEY]["file"])
        return None

    return per_predictor(_LAYERS, predictor, load)


__all__ = ["LAYERS_FILE", "METADATA_KEY", "has_layers", "layers_for", "mutagenesis", "mutant_logits"]
