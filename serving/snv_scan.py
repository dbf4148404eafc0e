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


CHUNK_WINDOWS = 512  # windows per numpy pass (their arrays stay within a few MB)
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


def _sliding_max(r: np.ndarray, width: int, powers: dict[int, np.ndarray]) -> np.ndarray:
    """r: (F, n) -> (F, n - width + 1): the max of r[:, i : i + width] at i; powers caches the widths 1, 2, 4, ..."""
    w = 1
    while w * 2 <= width:
        if w * 2 not in powers:
            a = powers[w]
            powers[w * 2] = np.maximum(a[:, :-w], a[:, w:])
        w *= 2
    a = powers[w]
    return a if w == width else np.maximum(a[:, : a.shape[1] - (width - w)], a[:, width - w:])


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
    matrices = _edge_matrices(layers)

    def one(b: tuple[int, int]) -> None:
        ref[b[0]:b[1]], alt[b[0]:b[1]] = _pass(layers, codes, s[b[0]:b[1]], c, matrices)

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


def _pass(layers, codes: np.ndarray, starts: np.ndarray, c: int, matrices: tuple[np.ndarray, np.ndarray]
          ) -> tuple[np.ndarray, np.ndarray]:
    """One pass: sorted starts (m,) whose windows lie in codes -> (reference (m,), with each base at c (m, 4)).
    The convolution runs over every base under them; the rest only at the starts asked (slices where they are
    consecutive, gathers otherwise). Arrays are filters-major, (F, positions): numpy's elementwise work then runs
    along positions."""
    k, left, p, t, f = layers.width, layers.pad_left, layers.pool, layers.bins, layers.filters
    right, L = k - 1 - left, layers.length
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
    cols = np.lib.stride_tricks.sliding_window_view(onehot, k, axis=0).transpose(0, 2, 1).reshape(b - a, k * 4)
    z = layers.kernel.reshape(k * 4, f).T @ cols.T + layers.bias[:, None]  # (F, b - a) before ReLU: position a + i
    r = np.maximum(z, 0)
    powers = {1: r}
    # the window's edge positions as its zero padding leaves them: minus the taps that reach outside it (cols row q
    # holds onehot rows q .. q + K - 1: row i the `left` bases before the window at a + i first, row i + L - 1 the
    # `right` bases after it last)
    ml, mr = matrices
    cut_l = (ml @ rows(cols, 0)[:, :left * 4].T).reshape(left, f, m)
    cut_r = (mr @ rows(cols, L - 1)[:, (left + 1) * 4:].T).reshape(right, f, m)
    pooled = np.empty((t, f, m), np.float32)
    for j in range(t):
        clean_lo, clean_hi = max(j * p, left), min(j * p + p, L - right)
        out = pooled[j]
        if clean_lo < clean_hi:
            out[:] = at(_sliding_max(r, clean_hi - clean_lo, powers), clean_lo)
        else:
            out.fill(0)  # maxima of ReLU'd values
        edges = [(i, cut_l[i]) for i in range(j * p, min(j * p + p, left))]
        edges += [(L - right + i, cut_r[i]) for i in range(max(j * p, L - right) - (L - right),
                                                           max(0, j * p + p - (L - right)))]
        for offset, cut in edges:
            np.maximum(out, at(z, offset) - cut, out=out)
    hidden = layers.dense_w.T @ pooled.reshape(t * f, m) + layers.dense_b[:, None]  # (D, m) before ReLU
    ref = layers.logit_w[:, 0] @ np.maximum(hidden, 0) + layers.logit_b[0]
    # the substitution at offset c: new values at the touched offsets, new maxima of the touched bins
    u_lo, u_hi, bins = _touched(layers, c)
    centre = codes[a + rel + c]
    new = np.empty((len(bins), f, 4, m), np.float32)  # the touched bins' new maxima, each base at c
    keeps = []  # (F, m) per touched bin: the maximum of its untouched positions (0 where it has none: ReLU)
    for j in bins:
        keep = np.zeros((f, m), np.float32)
        if u_lo > j * p:  # the bin's positions before the touched ones, and after them
            keep = at(_sliding_max(r, min(u_lo, j * p + p) - j * p, powers), j * p)
        if u_hi < j * p + p - 1:
            keep = np.maximum(keep, at(_sliding_max(r, j * p + p - 1 - u_hi, powers), u_hi + 1))
        keeps.append(keep)
    # the touched offsets u_lo..u_hi at once (U, F, m) (input c reaches output u through tap c - u + left), less
    # what the reference base at c adds through each one's tap (the one-hot of the centres through those taps),
    # then with each base at c, and each touched bin's maximum over its offsets
    taps = np.arange(c - u_lo + left, c - u_hi + left - 1, -1)
    if dense:
        touched = np.lib.stride_tricks.sliding_window_view(z, m, axis=1)[:, u_lo:u_hi + 1].transpose(1, 0, 2)
    else:
        touched = z[:, rel[None, :] + np.arange(u_lo, u_hi + 1)[:, None]].transpose(1, 0, 2)
    less = (layers.kernel[taps].transpose(0, 2, 1).reshape(len(taps) * f, 4) @ codes_to_onehot(centre).T
            ).reshape(len(taps), f, m)
    np.subtract(touched, less, out=less)  # into a C-ordered array: numpy would lay a new one out as `touched`
    spans = [(n_bin, max(u_lo, j * p) - u_lo, min(u_hi, j * p + p - 1) - u_lo + 1) for n_bin, j in enumerate(bins)]
    value = np.empty_like(less)
    for base in range(4):  # one base at a time: arrays that stay in cache
        np.add(less, layers.kernel[taps, base][:, :, None], out=value)
        for n_bin, lo_u, hi_u in spans:
            np.maximum(keeps[n_bin], value[lo_u:hi_u].max(axis=0), out=new[n_bin, :, base])
    new -= pooled[bins][:, :, None, :]  # each touched bin's change
    rows = np.concatenate([np.arange(j * f, (j + 1) * f) for j in bins])
    hidden4 = (layers.dense_w[rows].T @ new.reshape(len(bins) * f, 4 * m)).reshape(-1, 4, m)  # (D, 4, m)
    hidden4 += hidden[:, None, :]
    alt = (layers.logit_w[:, 0] @ np.maximum(hidden4, 0, out=hidden4).reshape(-1, 4 * m)).reshape(4, m).T \
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
