"""The TensorFlow runtime: gradients of the exported SavedModel's pre-sigmoid logit w.r.t. the one-hot input
(grad x input saliency, optional gradient correction). The only module under serving/ that loads TensorFlow,
and it does so lazily, when a function is called."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from serving.artifact import SAVED_MODEL_DIR


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


def load_logits_fn(model_dir: str | os.PathLike):
    """The SavedModel's `logits` endpoint: x (N, L, 4) float32 -> (N, 1) logit tensor."""
    quiet_tensorflow()
    import tensorflow as tf

    root = tf.saved_model.load(str(Path(model_dir) / SAVED_MODEL_DIR))

    def logits(x):
        return root.logits(x)  # the closure keeps `root` (and so its variables) alive

    return logits


def gradients(logits_fn, x: np.ndarray, corrected: bool = False, batch_size: int = 512) -> np.ndarray:
    """d logit / d x for x: (N, L, 4) float32 -> (N, L, 4) float32.

    corrected: subtract, at each position, the mean gradient over the 4 bases (removes the
    off-simplex component of the gradient; Majdandzic & Koo)."""
    import tensorflow as tf

    out = []
    for start in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(np.asarray(x[start:start + batch_size], np.float32))
        with tf.GradientTape() as tape:
            tape.watch(xb)
            z = tf.reduce_sum(logits_fn(xb))  # per-sequence logits are independent: sum = each one's grad
        out.append(tape.gradient(z, xb).numpy())
    grad = np.concatenate(out) if out else np.zeros_like(x, np.float32)
    if corrected:
        grad = grad - grad.mean(axis=-1, keepdims=True)
    return grad


def saliency(logits_fn, x: np.ndarray, corrected: bool = False) -> np.ndarray:
    """grad x input scores: x (N, L, 4) -> (N, L, 4) float32 (non-zero only at each position's observed base)."""
    return gradients(logits_fn, x, corrected) * np.asarray(x, np.float32)
