"""The CNN's weights as plain numpy arrays (layers.npz in a model folder, written at export): what the incremental
engines compute with on the serving side (no TensorFlow, no `onnx` package), and what export writes its graphs from.

The architecture (training/model.py): (L, 4) -> Conv1D(F, K, relu, 'same') -> MaxPool1D(P) -> Flatten ->
Dense(D, relu) -> Dense(1) logit. Keras 'same' padding puts (K - 1) // 2 zeros before a window and the rest after.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LAYERS_FILE = "layers.npz"
_ARRAYS = ("kernel", "bias", "dense_w", "dense_b", "logit_w", "logit_b")


@dataclass(frozen=True)
class Layers:
    """kernel: (K, C, F), bias: (F,); pool P; dense_w: (T * F, D) in Keras' flatten order (bin t, filter f) ->
    row t * F + f, dense_b: (D,); logit_w: (D, 1), logit_b: (1,); length L, T = L // P. All float32."""

    kernel: np.ndarray
    bias: np.ndarray
    pool: int
    dense_w: np.ndarray
    dense_b: np.ndarray
    logit_w: np.ndarray
    logit_b: np.ndarray
    length: int

    @property
    def width(self) -> int:
        """K, the convolution's kernel width."""
        return int(self.kernel.shape[0])

    @property
    def filters(self) -> int:
        return int(self.kernel.shape[2])

    @property
    def bins(self) -> int:
        """T = L // P pooled bins per window (positions from T * P on are dropped, as Keras' 'valid' pool does)."""
        return self.length // self.pool

    @property
    def pad_left(self) -> int:
        """Zeros before a window in the 'same' convolution: (K - 1) // 2 (the rest, K - 1 - that, go after)."""
        return (self.width - 1) // 2

    def check(self) -> None:
        """ValueError unless the shapes fit together (and the window holds at least one kernel and one bin)."""
        k, c, f = self.kernel.shape
        problems = []
        if c != 4:
            problems.append(f"kernel has {c} input channels, not 4")
        if self.bias.shape != (f,):
            problems.append(f"bias {self.bias.shape} != ({f},)")
        if self.length < k or self.bins < 1:
            problems.append(f"window {self.length} shorter than the kernel {k} or the pool {self.pool}")
        if self.dense_w.shape[0] != self.bins * f or self.dense_b.shape != (self.dense_w.shape[1],):
            problems.append(f"dense {self.dense_w.shape} does not take {self.bins} bins x {f} filters")
        if self.logit_w.shape != (self.dense_w.shape[1], 1) or self.logit_b.shape != (1,):
            problems.append(f"logit {self.logit_w.shape} does not map {self.dense_w.shape[1]} units to 1")
        if problems:
            raise ValueError("layers do not fit together: " + "; ".join(problems))

    def save(self, path: str | os.PathLike) -> None:
        """Write layers.npz (plain arrays, no pickle)."""
        with open(path, "wb") as fh:
            np.savez(fh, **{k: getattr(self, k) for k in _ARRAYS},
                     pool=np.int64(self.pool), length=np.int64(self.length))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Layers":
        """Read layers.npz (ValueError naming the file when it is not one)."""
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                arrays = {k: np.asarray(z[k], np.float32) for k in _ARRAYS}
                layers = cls(pool=int(z["pool"]), length=int(z["length"]), **arrays)
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not a bindcnn layers file ({exc}); re-export the model: bindcnn export "
                             "--model DIR") from None
        layers.check()
        return layers

    def conv_same(self, x: np.ndarray) -> np.ndarray:
        """x: (N, L, 4) float32 -> the window's 'same' convolution before ReLU: (N, L, F) float32."""
        k, left = self.width, self.pad_left
        n, length, _ = x.shape
        padded = np.zeros((n, length + k - 1, 4), np.float32)
        padded[:, left:left + length] = x
        cols = np.lib.stride_tricks.sliding_window_view(padded, k, axis=1).transpose(0, 1, 3, 2)  # (N, L, K, 4)
        return (cols.reshape(n * length, k * 4) @ self.kernel.reshape(k * 4, -1)).reshape(n, length, -1) + self.bias

    def head(self, pooled: np.ndarray) -> np.ndarray:
        """pooled: (..., T * F) float32 in Keras' flatten order -> logits (...,) float32."""
        hidden = np.maximum(pooled @ self.dense_w + self.dense_b, 0)
        return (hidden @ self.logit_w)[..., 0] + self.logit_b[0]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The whole network in numpy, window by window: x: (N, L, 4) float32 -> logits (N,) float32."""
        h = np.maximum(self.conv_same(x), 0)
        t, p = self.bins, self.pool
        pooled = h[:, :t * p].reshape(len(x), t, p, -1).max(axis=2)
        return self.head(pooled.reshape(len(x), -1))


def one_blas_thread():
    """A context in which numpy's BLAS runs its matrix products on one thread, for the incremental engines
    (serving.snv_scan, serving.substitutions) whose passes run on their own threads, one per core: OpenBLAS's
    threads on top of them wait for work by spinning and take a core from the other pass. Measured on the 2-core
    EPYC (medians of interleaved runs): 1.3-1.6x the SNVs/s of the centred-SNV engine, 1.48x the substitutions/s of
    mutagenesis. threadpoolctl's public limit, restored on exit."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")
