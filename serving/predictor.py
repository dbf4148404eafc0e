"""Binding predictions from the exported ONNX model with ONNX Runtime (CUDA first, CPU fallback).

Never imports TensorFlow: this is the fast path used by the service and the local scorer.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from serving.artifact import (FINGERPRINT_TOLERANCE, FINGERPRINT_TOLERANCE_GPU, ONNX_FILE, check_fingerprint,
                              probe_inputs, read_metadata, verify_model_dir)
from serving.dna import average_strands, check_onehot, encode, reverse_complement

log = logging.getLogger("bindcnn.predictor")

GPU_PROVIDERS = ("CUDAExecutionProvider",)
CPU_PROVIDER = "CPUExecutionProvider"
# Sequences per session.run: per-call overhead is ~1% at 1024, and the memory arena (on, see session_options)
# then holds ~35 MB; 4096 doubled the RSS and ran no faster (benchmarks/RESULTS.md).
DEFAULT_CHUNK = 1024
# Batches up to this size run on a second, single-thread session: waking a pool thread costs more than it
# saves there (~25% more sequences/s at batch 1 on 2 cores; from batch 16 on, two threads win).
SMALL_BATCH = 8


def nvidia_device_present() -> bool:
    """True where the kernel exposes an NVIDIA GPU (/dev/nvidia0, ...). ONNX Runtime's provider list
    describes the build, not the hardware (FACTS.md), so this is what 'auto' asks."""
    import glob

    return bool(glob.glob("/dev/nvidia[0-9]*"))


def choose_providers(device: str = "auto") -> list[str]:
    """Execution providers to ask for: 'auto' (CUDA when this build has it and an NVIDIA device is
    present, then CPU; without a device it skips ONNX Runtime's noisy failed CUDA load), 'cpu' or 'cuda'
    (CUDA first even without a visible device, e.g. to prove the fallback)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu" or (device == "auto" and not nvidia_device_present()):
        return [CPU_PROVIDER]
    gpu = [p for p in GPU_PROVIDERS if p in available]
    if device == "cuda" and not gpu:
        raise RuntimeError(f"CUDA execution provider not in this onnxruntime build ({available})")
    return gpu + [CPU_PROVIDER]


def _preload_cuda_libraries() -> None:
    """Load CUDA/cuDNN from the nvidia-* pip wheels when installed (onnxruntime-gpu[cuda,cudnn])."""
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    try:
        preload()
    except Exception as exc:  # pragma: no cover - depends on the machine
        log.debug("onnxruntime.preload_dlls() failed: %s", exc)


def session_options(threads: int | None = None):
    """The service's ONNX Runtime session options (see benchmarks/ for why)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or int(os.environ.get("BINDCNN_THREADS", 0)) or (os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # The arena keeps the largest run's buffers, so the Predictor runs at most DEFAULT_CHUNK sequences at a
    # time (arena ~35 MB). Off, every run maps and faults in fresh pages: 1.5-2.5x slower at batch 1000-4096.
    opts.enable_cpu_mem_arena = True
    # Idle pool threads sleep instead of spinning: on a 2-core machine a spinning thread takes the CPU
    # from the HTTP server (and from other processes) between runs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class PredictorLike(Protocol):
    """What scoring needs from a predictor: Predictor (in-process) or serving.client.HttpPredictor (a service).

    prefers_strings: True when sequences are cheaper to send as text than as one-hot (the HTTP client);
    scoring then validates text without encoding it and calls predict_sequences."""

    length: int
    alphabet: str
    prefers_strings: bool

    def predict_onehot(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]: ...

    def predict_sequences(self, sequences: Sequence[str], reverse_complement_average: bool = False
                          ) -> dict[str, np.ndarray]: ...


class Predictor:
    """An ONNX Runtime session over models/<name>/model.onnx plus its metadata.

    predict_onehot(x: (N, L, 4) float32) -> {"probability": (N,), "logit": (N,)} float32.
    """

    prefers_strings = False  # in-process: one-hot costs nothing to hand over

    def __init__(self, model_dir: str | os.PathLike, device: str = "auto", threads: int | None = None,
                 chunk_size: int = DEFAULT_CHUNK, verify: bool = True):
        import onnxruntime as ort

        self.model_dir = Path(model_dir)
        self.metadata: dict[str, Any] = verify_model_dir(self.model_dir) if verify else read_metadata(self.model_dir)
        self.length: int = self.metadata["sequence_length"]
        self.alphabet: str = self.metadata["alphabet"]
        self.input_name: str = self.metadata["input_name"]
        self.chunk_size = chunk_size
        requested = choose_providers(device)
        if any(p != CPU_PROVIDER for p in requested):
            _preload_cuda_libraries()
        self.session = ort.InferenceSession(
            str(self.model_dir / ONNX_FILE), sess_options=session_options(threads), providers=requested
        )
        self.providers: list[str] = self.session.get_providers()
        if requested[0] != CPU_PROVIDER and self.providers[0] == CPU_PROVIDER:
            log.warning("asked for %s but ONNX Runtime runs on %s (no usable GPU)", requested, self.providers)
        self._small_session = None
        if self.device == "cpu" and self.session.get_session_options().intra_op_num_threads > 1:
            self._small_session = ort.InferenceSession(str(self.model_dir / ONNX_FILE),
                                                       sess_options=session_options(1), providers=[CPU_PROVIDER])
        # Always (16 sequences, ~1 ms): refuse an ONNX file that does not reproduce the SavedModel's logits.
        check_fingerprint(self.metadata, self._run(probe_inputs(self.length))[1], "the ONNX model (model.onnx)",
                          FINGERPRINT_TOLERANCE_GPU if self.device == "cuda" else FINGERPRINT_TOLERANCE)
        log.info("model %s:%s on providers %s", self.metadata["name"], self.metadata["version"], self.providers)

    @property
    def device(self) -> str:
        return "cuda" if self.providers and self.providers[0] == "CUDAExecutionProvider" else "cpu"

    def predict_onehot(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """x: (N, L, 4) float32 (already validated) -> probability (N,), logit (N,) float32.

        With reverse_complement_average, both strands are scored and their logits averaged
        (probability = sigmoid of the mean logit)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        prob, logit = self._run(x)
        if reverse_complement_average:
            return average_strands(logit, self._run(np.ascontiguousarray(reverse_complement(x)))[1])
        return {"probability": prob, "logit": logit}

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x: (N, L, 4) float32 contiguous -> (prob (N,), logit (N,)) in chunks of chunk_size."""
        prob = np.empty(len(x), dtype=np.float32)
        logit = np.empty(len(x), dtype=np.float32)
        small = self._small_session is not None and len(x) <= SMALL_BATCH
        session = self._small_session if small else self.session
        for start in range(0, len(x), self.chunk_size):
            chunk = x[start : start + self.chunk_size]
            p, z = session.run(["prob", "logit"], {self.input_name: chunk})
            prob[start : start + len(chunk)] = p.reshape(-1)
            logit[start : start + len(chunk)] = z.reshape(-1)
        return prob, logit

    def predict_sequences(self, sequences: Sequence[str], reverse_complement_average: bool = False
                          ) -> dict[str, np.ndarray]:
        """sequences: N strings of the model's length (ACGTN, any case) -> probability, logit (N,)."""
        return self.predict_onehot(encode(sequences, self.length, self.alphabet), reverse_complement_average)

    def predict_array(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """A client's array ((N, L, 4) or (N, 4, L), any 0/1 numeric dtype) -> probability, logit."""
        return self.predict_onehot(check_onehot(x, self.length), reverse_complement_average)

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {
            "providers": self.providers,
            "device": self.device,
            "onnxruntime": ort.__version__,
            "available_providers": ort.get_available_providers(),
        }

