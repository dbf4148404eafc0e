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

import os
import threading

import numpy as np

from serving.dna import average_strands, codes_to_onehot
from serving.layers import one_blas_thread
from serving.substitutions import reverse_strand


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
    codes = np.asarray(codes, np.uint8)
    L = predictor.length
    centres = _check(len(codes), centres, L)
    m = len(centres)
    windows = np.lib.stride_tricks.sliding_window_view(codes, L)[centres - L // 2]  # (M, L)
    every = np.repeat(windows[:, None, :], 5, axis=1)  # (M, 5, L): the reference, then base 0..3 at the centre
    every[:, 1:, L // 2] = np.arange(4, dtype=np.uint8)
    scored = np.ones((m, 5), bool)  # the reference once, each other base once
    scored[:, 1:] = np.arange(4) != codes[centres][:, None]
    flat = every[scored]
    if hasattr(predictor, "predict_codes"):
        out = predictor.predict_codes(flat, reverse_complement_average=rc)["logit"]
    else:
        out = predictor.predict_onehot(codes_to_onehot(flat), reverse_complement_average=rc)["logit"]
    logit = np.empty((m, 5), np.float32)
    logit[scored] = out
    logit[~scored] = np.repeat(logit[:, 0], (~scored).sum(axis=1))  # the reference base: the reference logit
    return logit[:, 0].copy(), np.ascontiguousarray(logit[:, 1:])


CHUNK_WINDOWS = 1024  # windows per numpy pass: ~10 MB of arrays per thread (see _Workspace for the measurement)
CHUNK_BASES = 1 << 14  # ... and at most this many bases under them (sparse centres: several passes)


def centred_logits(layers, codes: np.ndarray, centres: np.ndarray, rc: bool = False, threads: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """As per_window_logits, computed incrementally from the model's weights: layers (serving.layers.Layers, for
    which supports(layers) holds), codes (n,) uint8, centres (M,) int64 -> (reference logits (M,), logits (M, 4))
    float32. Passes of CHUNK_WINDOWS windows spread over `threads` threads (numpy releases the GIL)."""
    codes = np.ascontiguousarray(codes, np.uint8)
    L = layers.length
    centres = _check(len(codes), centres, L)
    starts = centres - L // 2
    ref, alt = _strand(layers, codes, starts, L // 2, threads)
    if rc:
        back = reverse_strand(codes[None])[0]
        ref_rc, alt_rc = _strand(layers, back, len(codes) - L - starts, L - 1 - L // 2, threads)
        ref = average_strands(ref, ref_rc)["logit"]
        alt = ((alt + alt_rc[:, ::-1]) / 2).astype(np.float32)  # base b forward is base 3 - b on the other strand
    return ref, alt


def supports(layers) -> bool:
    """Whether centred_logits applies to this architecture: on both strands, the pooled bins a centre substitution
    touches hold no position of the window's edges (the first pad_left and last K - 1 - pad_left positions, whose
    convolution the window's zero padding truncates)."""
    return all(_touched(layers, c) is not None for c in (layers.length // 2, layers.length - 1 - layers.length // 2))


def _touched(layers, c: int) -> tuple[int, int, list[int]] | None:
    """For a substitution at window offset c: (first, last touched convolution offset, the touched bins), or None
    when a touched bin reaches a window edge."""
    k, left, p = layers.width, layers.pad_left, layers.pool
    right = k - 1 - left
    lo, hi = max(c - right, 0), min(c + left, layers.bins * p - 1)
    bins = list(range(lo // p, hi // p + 1)) if lo <= hi else []
    if any(j * p < left or j * p + p > layers.length - right for j in bins):
        return None
    return lo, hi, bins


def _edge_matrices(layers) -> tuple[np.ndarray, np.ndarray]:
    """What the window's zero padding removes from the long convolution at its edges, as matrices over the one-hot
    of the bases just outside it: left (left * F, left * 4): offset i < left, base j of the `left` before the
    window, tap j - i; right (right * F, right * 4): offset L - right + i, base j after the window, tap
    j + K - 1 - i."""
    kernel = layers.kernel  # (K, 4, F)
    k, f, left = layers.width, layers.filters, layers.pad_left
    right = k - 1 - left
    ml = np.zeros((left, f, left, 4), np.float32)
    mr = np.zeros((right, f, right, 4), np.float32)
    for i in range(left):
        for j in range(i, left):
            ml[i, :, j] = kernel[j - i].T
    for i in range(right):
        for j in range(i + 1):
            mr[i, :, j] = kernel[j + k - 1 - i].T
    return ml.reshape(left * f, left * 4), mr.reshape(right * f, right * 4)


class _Plan:
    """What every pass of one strand shares: the weights laid out for its matrix products, the offsets and bins
    a substitution at window offset c touches, and the taps through which it reaches them."""

    def __init__(self, layers, c: int):
        k, f, p = layers.width, layers.filters, layers.pool
        self.layers, self.c = layers, c
        self.conv = np.ascontiguousarray(layers.kernel.reshape(k * 4, f).T)  # (F, K * 4)
        self.edges = _edge_matrices(layers)
        self.dense_t = np.ascontiguousarray(layers.dense_w.T)  # (D, T * F)
        self.u_lo, self.u_hi, self.bins = _touched(layers, c)
        # input c reaches output u through tap c - u + left: the touched offsets' taps, (U, F, 4) and (U * F, 4)
        taps = np.arange(c - self.u_lo + layers.pad_left, c - self.u_hi + layers.pad_left - 1, -1)
        self.tap_weights = np.ascontiguousarray(layers.kernel[taps].transpose(0, 2, 1))  # (U, F, 4)
        self.tap_matrix = self.tap_weights.reshape(len(taps) * f, 4)
        self.spans = [(n, max(self.u_lo, j * p) - self.u_lo, min(self.u_hi, j * p + p - 1) - self.u_lo + 1)
                      for n, j in enumerate(self.bins)]  # (touched bin, its first and end touched offset - u_lo)
        rows = np.concatenate([np.arange(j * f, (j + 1) * f) for j in self.bins])
        self.touched_dense_t = np.ascontiguousarray(layers.dense_w[rows].T)  # (D, len(bins) * F)


class _Workspace:
    """One thread's arrays, reused pass after pass. Allocated and freed in every pass, a pass's few MB went back to
    the system and were faulted in again: on the 2-core EPYC, per tile of 65,536 centres, ~90k page faults and a
    third of the engine's CPU time (0.82 -> 0.54 CPU-s with this workspace, passes of 512 windows; passes of 1024
    then 0.47 -> 0.36 CPU-s: half the numpy calls, and the GIL handed between the threads half as often)."""

    def __init__(self):
        self.flat: dict[str, np.ndarray] = {}

    def __call__(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A C-contiguous float32 array of `shape` (its contents left from the last pass)."""
        size = int(np.prod(shape))
        flat = self.flat.get(name)
        if flat is None or flat.size < size:
            flat = self.flat[name] = np.empty(size, np.float32)
        return flat[:size].reshape(shape)


def _strand(layers, codes: np.ndarray, starts: np.ndarray, c: int, threads: int | None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Windows starting at `starts` (M,) in codes, substituted at offset c -> (reference (M,), with each base (M, 4))."""
    order = np.argsort(starts, kind="stable")
    s = starts[order]
    L = layers.length
    bounds, i = [], 0
    while i < len(s):  # passes of at most CHUNK_WINDOWS windows over at most CHUNK_BASES bases (or one window)
        j = min(i + CHUNK_WINDOWS, int(np.searchsorted(s, s[i] + max(CHUNK_BASES - L, 0), "right")))
        bounds.append((i, j))
        i = j
    ref = np.empty(len(s), np.float32)
    alt = np.empty((len(s), 4), np.float32)
    plan = _Plan(layers, c)
    local = threading.local()

    def one(b: tuple[int, int]) -> None:
        if not hasattr(local, "workspace"):
            local.workspace = _Workspace()
        ref[b[0]:b[1]], alt[b[0]:b[1]] = _pass(plan, codes, s[b[0]:b[1]], local.workspace)

    if threads is None:
        threads = len(os.sched_getaffinity(0))
    if threads <= 1 or len(bounds) < 2:
        for b in bounds:
            one(b)
    else:  # passes on our threads, each pass's matrix products on one BLAS thread (serving.layers.one_blas_thread)
        from concurrent.futures import ThreadPoolExecutor

        with one_blas_thread(), ThreadPoolExecutor(min(threads, len(bounds)), thread_name_prefix="bindcnn-snv") as pool:
            list(pool.map(one, bounds))
    out_ref, out_alt = np.empty_like(ref), np.empty_like(alt)
    out_ref[order], out_alt[order] = ref, alt
    return out_ref, out_alt


def _pass(plan: _Plan, codes: np.ndarray, starts: np.ndarray, ws: _Workspace) -> tuple[np.ndarray, np.ndarray]:
    """One pass: sorted starts (m,) whose windows lie in codes -> (reference (m,), with each base at plan.c (m, 4)).
    The convolution runs over every base under them; the rest only at the starts asked (slices where they are
    consecutive, gathers otherwise). Arrays are filters-major, (F, positions): numpy's elementwise work then runs
    along positions; every array larger than a window's few values lives in the thread's workspace `ws`."""
    layers, c = plan.layers, plan.c
    k, left, p, t, f = layers.width, layers.pad_left, layers.pool, layers.bins, layers.filters
    right, L, d = k - 1 - left, layers.length, layers.dense_b.shape[0]
    a, b = int(starts[0]), int(starts[-1]) + L  # the bases under these windows
    rel = starts - a
    m = len(rel)
    dense = rel[-1] == m - 1  # consecutive starts: slices instead of gathers

    def at(track: np.ndarray, offset: int) -> np.ndarray:  # (F, m): track columns of the asked windows, shifted
        return track[:, offset:offset + m] if dense else track[:, rel + offset]

    def rows(matrix: np.ndarray, offset: int) -> np.ndarray:  # (m, ...): matrix rows of the asked windows, shifted
        return matrix[offset:offset + m] if dense else matrix[rel + offset]

    # the long convolution over codes[a - left : b + right] (zeros outside codes, as its own padding)
    lo, hi = a - left, b + right
    onehot = np.zeros((hi - lo, 4), np.float32)
    onehot[max(0, -lo):hi - lo - max(0, hi - len(codes))] = codes_to_onehot(codes[max(lo, 0):min(hi, len(codes))])
    cols3 = ws("cols", (b - a, k, 4))  # cols row q: onehot rows q .. q + K - 1
    np.copyto(cols3, np.lib.stride_tricks.sliding_window_view(onehot, k, axis=0).transpose(0, 2, 1))
    cols = cols3.reshape(b - a, k * 4)
    z = np.matmul(plan.conv, cols.T, out=ws("z", (f, b - a)))  # (F, b - a) before ReLU: position a + i
    z += layers.bias[:, None]
    r = np.maximum(z, 0, out=ws("r", (f, b - a)))
    powers = {1: r}  # running maxima of r over 1, 2, 4, ... positions

    def window_max(width: int, offset: int, out: np.ndarray) -> np.ndarray:
        """out (F, m) = the max of r over `width` positions from `offset` in each asked window."""
        w = 1
        while w * 2 <= width:
            if w * 2 not in powers:
                prev = powers[w]
                powers[w * 2] = np.maximum(prev[:, :-w], prev[:, w:], out=ws(f"max{w * 2}", (f, b - a - 2 * w + 1)))
            w *= 2
        return np.maximum(at(powers[w], offset), at(powers[w], offset + width - w), out=out)

    # the window's edge positions as its zero padding leaves them: minus the taps that reach outside it (cols row i
    # holds the `left` bases before the window at a + i first, row i + L - 1 the `right` bases after it last)
    ml, mr = plan.edges
    cut_l = np.matmul(ml, rows(cols, 0)[:, :left * 4].T, out=ws("cut_l", (left * f, m))).reshape(left, f, m)
    cut_r = np.matmul(mr, rows(cols, L - 1)[:, (left + 1) * 4:].T, out=ws("cut_r", (right * f, m))).reshape(right, f, m)
    pooled = ws("pooled", (t, f, m))
    scratch = ws("scratch", (f, m))
    for j in range(t):
        clean_lo, clean_hi = max(j * p, left), min(j * p + p, L - right)
        out = pooled[j]
        if clean_lo < clean_hi:
            window_max(clean_hi - clean_lo, clean_lo, out)
        else:
            out.fill(0)  # maxima of ReLU'd values
        edges = [(i, cut_l[i]) for i in range(j * p, min(j * p + p, left))]
        edges += [(L - right + i, cut_r[i]) for i in range(max(j * p, L - right) - (L - right),
                                                           max(0, j * p + p - (L - right)))]
        for offset, cut in edges:
            np.maximum(out, np.subtract(at(z, offset), cut, out=scratch), out=out)
    hidden = np.matmul(plan.dense_t, pooled.reshape(t * f, m), out=ws("hidden", (d, m)))  # (D, m) before ReLU
    hidden += layers.dense_b[:, None]
    ref = layers.logit_w[:, 0] @ np.maximum(hidden, 0, out=ws("relu", (d, m))) + layers.logit_b[0]
    # the substitution at offset c: new values at the touched offsets, new maxima of the touched bins
    u_lo, u_hi, bins = plan.u_lo, plan.u_hi, plan.bins
    new = ws("new", (len(bins), f, 4, m))  # the touched bins' new maxima, each base at c
    keeps = []  # (F, m) per touched bin: the maximum of its untouched positions (0 where it has none: ReLU)
    for n_bin, j in enumerate(bins):
        keep = ws(f"keep{n_bin}", (f, m))
        keep.fill(0)
        if u_lo > j * p:  # the bin's positions before the touched ones, and after them
            window_max(min(u_lo, j * p + p) - j * p, j * p, keep)
        if u_hi < j * p + p - 1:
            np.maximum(keep, window_max(j * p + p - 1 - u_hi, u_hi + 1, scratch), out=keep)
        keeps.append(keep)
    # the touched offsets u_lo..u_hi at once (U, F, m), less what the reference base at c adds through each one's
    # tap (the one-hot of the centres through those taps), then with each base at c, and each touched bin's maximum
    # over its offsets
    n_u = u_hi - u_lo + 1
    if dense:
        touched = np.lib.stride_tricks.sliding_window_view(z, m, axis=1)[:, u_lo:u_hi + 1].transpose(1, 0, 2)
    else:
        touched = z[:, rel[None, :] + np.arange(u_lo, u_hi + 1)[:, None]].transpose(1, 0, 2)
    centre = codes[a + rel + c]
    less = np.matmul(plan.tap_matrix, codes_to_onehot(centre).T, out=ws("less", (n_u * f, m))).reshape(n_u, f, m)
    np.subtract(touched, less, out=less)
    value = ws("value", (n_u, f, m))
    for base in range(4):  # one base at a time: arrays that stay in cache
        np.add(less, plan.tap_weights[:, :, base, None], out=value)
        for n_bin, lo_u, hi_u in plan.spans:
            np.maximum(keeps[n_bin], np.max(value[lo_u:hi_u], axis=0, out=scratch), out=new[n_bin, :, base])
    for n_bin, j in enumerate(bins):
        new[n_bin] -= pooled[j][:, None, :]  # each touched bin's change
    hidden4 = np.matmul(plan.touched_dense_t, new.reshape(len(bins) * f, 4 * m), out=ws("hidden4", (d, 4 * m)))
    hidden4 = hidden4.reshape(d, 4, m)
    hidden4 += hidden[:, None, :]
    alt = (layers.logit_w[:, 0] @ np.maximum(hidden4, 0, out=hidden4).reshape(d, 4 * m)).reshape(4, m).T \
        + layers.logit_b[0]
    return ref.astype(np.float32), alt.astype(np.float32)


def engine_layers(predictor):
    """The layers centred_logits computes with for this predictor (its model folder's layers.npz, fitting the
    architecture), or None: scoring then goes window by window."""
    from serving.substitutions import layers_for

    layers = layers_for(predictor)
    if layers is not None and layers.length == predictor.length and supports(layers):
        return layers
    return None


def snv_logits(predictor, codes: np.ndarray, centres: np.ndarray, rc: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """Every base at each centre, on the window centred there: codes (n,) uint8, centres (M,) int64 offsets into
    codes (each window inside codes: ValueError otherwise) -> (reference logits (M,), logits (M, 4)) float32.
    Incremental (centred_logits) where the predictor's model folder has layers.npz, else window by window through
    the predictor (said once per folder, with the command that adds the engine's files)."""
    layers = engine_layers(predictor)
    if layers is not None:
        return centred_logits(layers, codes, centres, rc, getattr(predictor, "threads", None))
    folder = getattr(predictor, "model_dir", None)
    if folder is not None:
        from serving.console import say_once

        say_once(f"no layers: {folder}", f"note: {folder} has no layers.npz: every substitution is scored on its own "
                 f"window (slower); add it with: bindcnn export --model {folder}")
    return per_window_logits(predictor, codes, centres, rc)


__all__ = ["centred_logits", "engine_layers", "per_window_logits", "snv_logits", "supports", "windows_fit"]
