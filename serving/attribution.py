"""The TensorFlow runtime: attributions of the exported SavedModel's pre-sigmoid logit to the one-hot input
(grad x input, corrected gradients, expected gradients with hypothetical contributions). The only module under
serving/ that loads TensorFlow, and it does so lazily, when a function is called."""
from __future__ import annotations

import os
import sys
import weakref
from pathlib import Path
from typing import NamedTuple

import numpy as np

from serving.artifact import SAVED_MODEL_DIR
from serving.shuffle import shuffled_references

METHODS = ("gradient", "corrected", "expected_gradients")
# Chosen by `bindcnn judge --attribution` (docs/results/attribution.md, docs/explaining.md): of these three it
# recovers the planted motif positions best (per-sequence AUROC and AUPR, Majdandzic, Rajesh & Koo 2023), ahead of
# corrected gradients on every seed; plain grad x input is clearly last.
DEFAULT_METHOD = "expected_gradients"
# Dinucleotide-shuffled references x integration steps per sequence, chosen by
# `python -m benchmarks.attribution_convergence` (benchmarks/RESULTS-attribution-convergence.md): the smallest spread
# over reference draws with a median completeness gap <= 0.05 logit within 1,000 gradients per sequence. 10 x 16 left a
# map's worst position moving by ~23% of its peak between draws; 50 x 16 by ~11%.
EG_REFERENCES, EG_STEPS = 50, 16


def quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up noise (C++ log lines, CUDA probing) kept off the terminal.

    Sets TF_CPP_MIN_LOG_LEVEL=3 and silences file descriptor 2 during the import only; errors raised
    by the import itself still propagate."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_logits_fn(model_dir: str | os.PathLike, quiet: bool = False):
    """The SavedModel's `logits` endpoint: x (N, L, 4) float32 -> (N, 1) logit tensor. Says on stderr what it
    loads (TensorFlow's start-up takes seconds and ~600 MB: a command must not sit silent meanwhile)."""
    import time

    from serving.console import say

    t0 = time.perf_counter()
    if "tensorflow" not in sys.modules:
        say("loading TensorFlow and the SavedModel for attribution (a few seconds, once) ...", quiet)
    quiet_tensorflow()
    import tensorflow as tf

    root = tf.saved_model.load(str(Path(model_dir) / SAVED_MODEL_DIR))
    say(f"attribution model ready in {time.perf_counter() - t0:.1f} s", quiet)

    def logits(x):
        return root.logits(x)  # the closure keeps `root` (and so its variables) alive

    return logits


def _gradient_graph(logits_fn):
    """d sum(logit) / d x as one tf.function per logits function (forward and backward in one graph: about twice
    as fast as an eager tape here), kept while the logits function lives."""
    graph = _GRAPHS.get(logits_fn)
    if graph is None:
        import tensorflow as tf

        @tf.function(reduce_retracing=True, autograph=False)
        def graph(xb):
            with tf.GradientTape() as tape:
                tape.watch(xb)
                z = tf.reduce_sum(logits_fn(xb))  # per-sequence logits are independent: sum = each one's grad
            return tape.gradient(z, xb)

        _GRAPHS[logits_fn] = graph
    return graph


_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def gradients(logits_fn, x: np.ndarray, corrected: bool = False, batch_size: int = 512) -> np.ndarray:
    """d logit / d x for x: (N, L, 4) float32 -> (N, L, 4) float32.

    corrected: subtract, at each position, the mean gradient over the 4 bases (removes the
    off-simplex component of the gradient; Majdandzic & Koo)."""
    import tensorflow as tf

    graph = _gradient_graph(logits_fn)
    out = [graph(tf.convert_to_tensor(np.asarray(x[start:start + batch_size], np.float32))).numpy()
           for start in range(0, len(x), batch_size)]
    grad = np.concatenate(out) if out else np.zeros_like(x, np.float32)
    if corrected:
        grad = grad - grad.mean(axis=-1, keepdims=True)
    return grad


def saliency(logits_fn, x: np.ndarray, corrected: bool = False) -> np.ndarray:
    """grad x input scores: x (N, L, 4) -> (N, L, 4) float32 (non-zero only at each position's observed base)."""
    return gradients(logits_fn, x, corrected) * np.asarray(x, np.float32)


def logits(logits_fn, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """The pre-sigmoid logit: x (N, L, 4) float32 -> (N,) float32."""
    out = [np.asarray(logits_fn(np.asarray(x[s:s + batch_size], np.float32))).reshape(-1)
           for s in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def expected_gradients(logits_fn, x: np.ndarray, references: int = EG_REFERENCES, steps: int = EG_STEPS,
                       seed: int = 0, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Expected gradients: integrated gradients (midpoint rule, `steps` points on the straight path) from
    `references` dinucleotide shuffles of each sequence (serving.shuffle.shuffled_references: drawn from the
    sequence's own letters and `seed`, so a sequence's map never depends on its row or batch), averaged.

    x: (N, L, 4) one-hot float32 -> (hypothetical contributions (N, L, 4) float32, convergence_delta (N,)
    float32). hyp[i, l, b] is what base b at position l would contribute, m[l, b] - sum_c m[l, c] r[l, c]
    averaged over references r (m: the path-averaged gradient); what TF-MoDISco takes. hyp * x are the actual
    contributions; they sum per sequence to about logit(x) - mean logit(references) (completeness), and
    convergence_delta = |sum(hyp * x) - (logit(x) - mean logit(references))| is how far from it this many
    references and steps leave each map (benchmarks/attribution_convergence.py)."""
    if references < 1 or steps < 1:
        raise ValueError(f"expected gradients needs references >= 1 and steps >= 1, got {references}, {steps}")
    x = np.asarray(x, np.float32)
    n, length, _ = x.shape
    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)
    refs = shuffled_references(x, references, seed)  # (N, K, L, 4)
    out = np.empty_like(x)
    per_chunk = max(1, batch_size // (references * steps))
    for s in range(0, n, per_chunk):
        xs, rs = x[s:s + per_chunk, None], refs[s:s + per_chunk]  # (C, 1, L, 4), (C, K, L, 4)
        path = rs[:, :, None] + alphas[None, None, :, None, None] * (xs - rs)[:, :, None]  # (C, K, M, L, 4)
        grad = gradients(logits_fn, path.reshape(-1, length, 4), batch_size=batch_size)
        mean_grad = grad.reshape(path.shape).mean(axis=2)  # (C, K, L, 4)
        hyp = mean_grad - (mean_grad * rs).sum(axis=-1, keepdims=True)
        out[s:s + per_chunk] = hyp.mean(axis=1)
    z = logits(logits_fn, x, batch_size)
    z_ref = logits(logits_fn, refs.reshape(-1, length, 4), batch_size).reshape(n, references).mean(axis=1)
    total = (out * x).sum(axis=(1, 2), dtype=np.float64)
    return out, np.abs(total - (z.astype(np.float64) - z_ref)).astype(np.float32)


def hypothetical_contributions(logits_fn, x: np.ndarray, references: int = EG_REFERENCES, steps: int = EG_STEPS,
                               seed: int = 0, batch_size: int = 512) -> np.ndarray:
    """expected_gradients' hypothetical contributions alone: x (N, L, 4) -> (N, L, 4) float32."""
    return expected_gradients(logits_fn, x, references, steps, seed, batch_size)[0]


def resolve_method(method: str | None, corrected: bool | None = None) -> str:
    """The method a request asks for: `method`, else the older `corrected` flag (true: corrected, false:
    gradient), else DEFAULT_METHOD. ValueError when they contradict or the method is unknown."""
    if method is not None and method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose from {', '.join(METHODS)}")
    if method is not None and corrected is not None and corrected != (method == "corrected"):
        raise ValueError(f"corrected={str(corrected).lower()} contradicts method {method!r}: give one of them")
    if method is None and corrected is not None:
        return "corrected" if corrected else "gradient"
    return method or DEFAULT_METHOD


class Attribution(NamedTuple):
    """scores: (N, L, 4) float32, the contribution of each observed base (zero elsewhere); convergence_delta:
    (N,) float32 completeness gap of each expected-gradients map, None for the other methods."""
    scores: np.ndarray
    convergence_delta: np.ndarray | None


def attribution(logits_fn, x: np.ndarray, method: str = DEFAULT_METHOD, seed: int = 0) -> Attribution:
    """x (N, L, 4) -> Attribution: the scores of `method` ("gradient": grad x input; "corrected": gradient minus
    its mean over A/C/G/T, then x input; "expected_gradients": hypothetical contributions x input, with each
    map's convergence_delta). Each sequence's map depends only on it, the model, the method and the seed."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose from {', '.join(METHODS)}")
    x = np.asarray(x, np.float32)
    if method == "expected_gradients":
        hyp, delta = expected_gradients(logits_fn, x, seed=seed)
        return Attribution(hyp * x, delta)
    return Attribution(saliency(logits_fn, x, corrected=method == "corrected"), None)


def attribute(logits_fn, x: np.ndarray, method: str = DEFAULT_METHOD, seed: int = 0) -> np.ndarray:
    """attribution(...).scores: x (N, L, 4) -> (N, L, 4) float32, non-zero only at each observed base."""
    return attribution(logits_fn, x, method, seed).scores
