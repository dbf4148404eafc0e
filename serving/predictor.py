"""Binding predictions from the exported ONNX model with ONNX Runtime (CUDA first, CPU fallback).

Never imports TensorFlow: this is the fast path used by the service and the local scorer.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from serving.artifact import (FINGERPRINT_TOLERANCE, FINGERPRINT_TOLERANCE_GPU, check_fingerprint, read_metadata,
                              verify_model_dir)
from serving.dna import average_strands, check_onehot, encode_codes, reverse_complement
from serving.runner import CPU_PROVIDER, Plan, Runner

log = logging.getLogger("bindcnn.predictor")

GPU_PROVIDERS = ("CUDAExecutionProvider",)
# On CUDA: model.onnx with default options, 4096 sequences per run. On CPU the graph, the session options, the
# sequences per run and the threading are chosen per machine by serving/calibration.py (and cached).
GPU_PLAN = Plan(chunk=4096, small="main")


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


class PredictorLike(Protocol):
    """What scoring needs from a predictor: Predictor (in-process) or serving.client.HttpPredictor (a service).

    prefers_strings: True when sequences are cheaper to send as text than as one-hot; scoring then validates
    text without encoding it and calls predict_sequences. A predictor with predict_codes((N, L) uint8) gets
    FASTA records as codes (Predictor, serving.client.HttpPredictor); one with start_codes (Predictor) is handed
    each batch before the next one is read."""

    length: int
    alphabet: str
    prefers_strings: bool

    def predict_onehot(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]: ...

    def predict_sequences(self, sequences: Sequence[str], reverse_complement_average: bool = False
                          ) -> dict[str, np.ndarray]: ...


class Pending:
    """Scores being computed (Predictor.start_codes): result() -> {"probability", "logit"} (N,) float32, once."""

    def __init__(self, finish):
        self.result = finish


class Predictor:
    """The exported model on ONNX Runtime, run as this machine's calibrated plan (serving/calibration.py: graph,
    session options, sequences per run, threads; reported by describe()), plus its metadata.

    predict_onehot(x: (N, L, 4) float32) / predict_codes(codes: (N, L) uint8) -> {"probability": (N,),
    "logit": (N,)} float32.
    """

    prefers_strings = False  # in-process: one-hot costs nothing to hand over

    def __init__(self, model_dir: str | os.PathLike, device: str = "auto", threads: int | None = None,
                 chunk_size: int | None = None, verify: bool = True, calibrate: str | None = None):
        """threads: CPU threads to use (default BINDCNN_THREADS, else all physical cores); chunk_size: sequences
        per session.run instead of the calibrated one; calibrate: "auto" (default, BINDCNN_CALIBRATE), "force"
        or "off" (serving.calibration.plan_for)."""
        self.model_dir = Path(model_dir)
        self.metadata: dict[str, Any] = verify_model_dir(self.model_dir) if verify else read_metadata(self.model_dir)
        self.length: int = self.metadata["sequence_length"]
        self.alphabet: str = self.metadata["alphabet"]
        self.input_name: str = self.metadata["input_name"]
        requested = choose_providers(device)
        self.runner: Runner | None = None
        if requested[0] != CPU_PROVIDER:
            _preload_cuda_libraries()
            self._start(GPU_PLAN, {"source": "not calibrated: CUDA requested"}, chunk_size, requested)
            if self.runner.providers[0] == CPU_PROVIDER:
                log.warning("asked for %s but ONNX Runtime runs on %s (no usable GPU)", requested, self.providers)
        if self.runner is None or self.device == "cpu":
            from serving.calibration import plan_for

            if self.runner is not None:
                self.runner.close()
            self._start(*plan_for(self.model_dir, self.metadata, threads, calibrate), chunk_size, [CPU_PROVIDER])
        # Always (16 sequences, ~1 ms): refuse an ONNX file that does not reproduce the SavedModel's logits.
        self._check_fingerprint()
        log.info("model %s:%s on providers %s: %s (%s)", self.metadata["name"], self.metadata["version"],
                 self.providers, self.plan.name, self.calibration.get("source"))

    def _check_fingerprint(self) -> None:
        """The probe batch comes from the cache folder (serving.calibration_cache.probe_inputs); on a mismatch it is
        made afresh and checked once more, so a damaged cache file cannot refuse a good model."""
        from serving.artifact import ArtifactError
        from serving.calibration_cache import probe_inputs

        tolerance = FINGERPRINT_TOLERANCE_GPU if self.device == "cuda" else FINGERPRINT_TOLERANCE
        for fresh in (False, True):
            try:
                check_fingerprint(self.metadata, self._run(probe_inputs(self.model_dir, self.length, fresh))[1],
                                  "the ONNX model (model.onnx)", tolerance)
                return
            except ArtifactError:
                if fresh:
                    raise

    def _start(self, plan: Plan, calibration: dict[str, Any], chunk_size: int | None, providers: list[str]) -> None:
        self.plan: Plan = plan.with_(chunk=int(chunk_size)) if chunk_size else plan
        self.calibration: dict[str, Any] = calibration
        self.runner = Runner(self.model_dir, self.plan, self.input_name, providers)
        self.session = self.runner.session
        self.providers: list[str] = self.runner.providers
        self.chunk_size = self.plan.chunk

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
        """x: (N, L, 4) float32 contiguous -> (prob (N,), logit (N,)) as the plan runs it."""
        return self.runner.run(x)

    def predict_codes(self, codes: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """codes: (N, L) uint8, 0-3 = the alphabet's letters, 4 = N (serving.dna.encode_codes; already
        validated) -> probability, logit (N,) float32. Cheaper than predict_onehot from text: each chunk is
        expanded to one-hot just before its run."""
        return self.start_codes(codes, reverse_complement_average).result()

    def start_codes(self, codes: np.ndarray, reverse_complement_average: bool = False) -> Pending:
        """predict_codes begun on the plan's other threads (serving.runner.Job); result() finishes it on the
        calling thread too. Meanwhile the caller may do its own work (serving.scoring.score reads its next batch)
        and the cores stay busy."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        job = self.runner.start_codes(codes)

        def finish() -> dict[str, np.ndarray]:
            prob, logit = job.finish()
            if reverse_complement_average:
                rc = np.where(codes < 4, 3 - codes, codes)[:, ::-1]  # complement of ACGT codes, reversed
                return average_strands(logit, self.runner.run_codes(np.ascontiguousarray(rc, np.uint8))[1])
            return {"probability": prob, "logit": logit}

        return Pending(finish)

    def predict_sequences(self, sequences: Sequence[str], reverse_complement_average: bool = False
                          ) -> dict[str, np.ndarray]:
        """sequences: N strings of the model's length (ACGTN, any case) -> probability, logit (N,)."""
        return self.predict_codes(encode_codes(sequences, self.length, self.alphabet), reverse_complement_average)

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
            "plan": self.plan.as_dict(),
            "calibration": self.calibration,
        }

