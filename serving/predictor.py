"""Binding predictions from the exported ONNX model with ONNX Runtime (CUDA first, CPU fallback), on fixed settings:
nothing is timed at start and nothing is written anywhere. Never imports TensorFlow.

ONNX Runtime settings on CPU (docs/performance.md "ONNX Runtime settings" has the figures; measured with
`python -m benchmarks.ort_settings` against ONNX Runtime's defaults at batch 1, 1000 and 4096):
- ONE InferenceSession on model.onnx per Predictor, with ONE intra-op thread, and otherwise ONNX Runtime's defaults:
  graph optimisation ORT_ENABLE_ALL (the blocked NCHWc conv needs it), memory arena on (runs of CHUNK sequences keep
  it at a few MB).
- threads = the cores given (cores_given(): the physical cores of this process's CPU affinity, capped by a cgroup
  CPU quota) or `threads=`. A batch is cut into runs of CHUNK = 128 sequences, and `threads` Python threads
  (concurrent.futures) run them at once on that session (Predictor._runs). On the 2-core AMD EPYC this ran 1.1-1.7x
  one session with two intra-op threads (its best run size, 1024) at batch 1000 and 4096, median >= 1.2x over
  three interleaved runs on a shared machine: an intra-op pool waits for its slowest thread at every op, while a
  thread that is done takes the next run; and a run of <= 256 sequences keeps the conv's output in cache. A batch of
  <= CHUNK (batch 1) runs on the calling thread, with no pool to wake.
- Settings(split=False) (`bindcnn tune` may choose it) is one session with `threads` intra-op threads that do not
  spin (session.intra_op.allow_spinning=0): idle, they leave the cores to reading, encoding and HTTP work.
- The graph: model.onnx pads the 24 filters to 32 (whole 16-channel blocks: ONNX Runtime's NCHWc block with
  AVX-512). On a CPU without AVX-512 ONNX Runtime blocks by 8, and the same weights padded to 8 (metadata.json
  "cpu_graphs" -> "no_avx512", written and parity-checked at export) run ~1.5x faster: cpu_graph() picks by that
  rule (read from /proc/cpuinfo's flags), never by timing. On the 2-core Zen 3 EPYC (AVX2) the removed per-machine
  calibration had chosen that layout too.
CUDA: ONNX Runtime's default options, runs of 4096 sequences. `bindcnn tune --model DIR` (serving/tuning.py) may
store other settings in metadata.json ("runtime_plan"); they are used when they were tuned for this model file,
CPU, thread count and ONNX Runtime version. The scan graph and any other ONNX files in the folder are not used here.
"""
from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from serving.artifact import (FINGERPRINT_TOLERANCE, FINGERPRINT_TOLERANCE_GPU, ONNX_FILE, check_fingerprint,
                              probe_inputs, read_metadata, verify_model_dir)
from serving.dna import average_strands, check_onehot, codes_to_onehot, encode_codes, reverse_complement

log = logging.getLogger("bindcnn.predictor")

CPU_PROVIDER = "CPUExecutionProvider"
GPU_PROVIDERS = ("CUDAExecutionProvider",)
OUTPUTS = ["prob", "logit"]
CHUNK = 128  # sequences per session.run on CPU (docs/performance.md)
GPU_CHUNK = 4096  # sequences per session.run on CUDA
PLAN_KEY = "runtime_plan"  # metadata.json's key for `bindcnn tune`'s settings


@dataclass(frozen=True)
class Settings:
    """How the CPU session runs. threads: the cores used; split: True = `threads` Python threads share the batch's
    runs on a single-thread session, False = one session with `threads` intra-op threads (not spinning) runs them
    one after the other; chunk: sequences per session.run."""

    threads: int
    split: bool = True
    chunk: int = CHUNK

    @property
    def name(self) -> str:
        if not self.threads:
            how = "ONNX Runtime defaults"
        elif self.split and self.threads > 1:
            how = f"{self.threads} Python threads x 1-thread session"
        else:
            how = f"{self.threads} intra-op thread{'s' if self.threads > 1 else ''}"
        return f"{how}, runs of {self.chunk}"


def cores_given() -> int:
    """Cores this process may use: the physical cores (not hyper-threads, ONNX Runtime's own default) among the
    CPUs of its affinity, capped by a cgroup v2 CPU quota (a Kubernetes CPU limit)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        try:
            top = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
            cores.add(((top / "physical_package_id").read_text().strip(), (top / "core_id").read_text().strip()))
        except OSError:
            cores.add(("", str(cpu)))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return max(1, min(len(cores), math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, len(cores))


def cpu_has_avx512() -> bool:
    """True where the CPU reports AVX-512F (Linux's /proc/cpuinfo flags); False where it does not or cannot say."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "avx512f" in line.split()
    except OSError:
        pass
    return False


def cpu_graph(metadata: dict[str, Any], avx512: bool | None = None) -> tuple[str, str]:
    """(file, why) of the graph to run on this CPU: model.onnx, or on a CPU without AVX-512 the 8-channel-block
    layout of the same weights when the model folder has it (metadata "cpu_graphs")."""
    narrow = (metadata.get("cpu_graphs") or {}).get("no_avx512")
    if narrow and not (cpu_has_avx512() if avx512 is None else avx512):
        return narrow["file"], "CPU without AVX-512: the 8-channel-block graph"
    return ONNX_FILE, "model.onnx"


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


def session_options(settings: Settings):
    """ONNX Runtime SessionOptions for settings on CPU: one intra-op thread when split, else `threads` that do
    not spin; everything else ONNX Runtime's defaults."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1 if settings.split else settings.threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def part_bounds(n: int, chunk: int, ways: int) -> list[tuple[int, int]]:
    """(start, stop) of equal runs of n rows: one when n <= chunk, else runs of at most `chunk` rows, as many as a
    multiple of `ways`, so that `ways` threads get the same work."""
    count = -(-n // max(1, chunk))
    if count <= 1:
        return [(0, n)]
    count = -(-count // ways) * ways
    return [(i * n // count, (i + 1) * n // count) for i in range(count)]


class PredictorLike(Protocol):
    """What scoring needs from a predictor: Predictor (in-process) or serving.client.HttpPredictor (a service).

    prefers_strings: True when sequences are cheaper to send as text than as one-hot; scoring then validates
    text without encoding it and calls predict_sequences. A predictor with predict_codes((N, L) uint8) gets
    FASTA records as codes (Predictor, serving.client.HttpPredictor)."""

    length: int
    alphabet: str
    prefers_strings: bool

    def predict_onehot(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]: ...

    def predict_sequences(self, sequences: Sequence[str], reverse_complement_average: bool = False
                          ) -> dict[str, np.ndarray]: ...


class Predictor:
    """The exported model on ONE ONNX Runtime session with fixed settings (module docstring), plus its metadata.

    predict_onehot(x: (N, L, 4) float32) / predict_codes(codes: (N, L) uint8) -> {"probability": (N,),
    "logit": (N,)} float32. Thread-safe.
    """

    prefers_strings = False  # in-process: one-hot costs nothing to hand over

    def __init__(self, model_dir: str | os.PathLike, device: str = "auto", threads: int | None = None,
                 chunk_size: int | None = None, verify: bool = True, settings: Settings | None = None):
        """threads: CPU cores to use (default: cores_given()); chunk_size: sequences per session.run instead of
        the settings' (CHUNK on CPU, GPU_CHUNK on CUDA); verify: check every file's sha256 first; settings: CPU
        settings to use instead of the tuned or fixed ones (serving.tuning compares them)."""
        self.model_dir = Path(model_dir)
        self.metadata: dict[str, Any] = verify_model_dir(self.model_dir) if verify else read_metadata(self.model_dir)
        self.length: int = self.metadata["sequence_length"]
        self.alphabet: str = self.metadata["alphabet"]
        self.input_name: str = self.metadata["input_name"]
        self.pool: ThreadPoolExecutor | None = None
        import onnxruntime as ort

        model = str(self.model_dir / ONNX_FILE)
        requested = choose_providers(device)
        self.session = None
        if requested[0] != CPU_PROVIDER:
            _preload_cuda_libraries()
            self.session = ort.InferenceSession(model, providers=requested)
            self.settings, self.source = Settings(0, split=False, chunk=GPU_CHUNK), "CUDA: ONNX Runtime defaults"
            if self.session.get_providers()[0] == CPU_PROVIDER:
                log.warning("asked for %s but ONNX Runtime runs on CPU (no usable GPU)", requested)
                self.session = None
        self.graph, self.graph_reason = ONNX_FILE, "model.onnx"
        if self.session is None:
            threads = threads or cores_given()
            self.settings, self.source = (settings, "given") if settings else self._cpu_settings(threads)
            self.graph, self.graph_reason = cpu_graph(self.metadata)
            if self.metadata.get("onnx_converter") == "direct" and "cpu_graphs" not in self.metadata \
                    and not cpu_has_avx512():  # exported before there was one: `bindcnn export` adds it
                from serving.console import say_once

                say_once(f"no cpu graphs: {self.model_dir}", f"note: {self.model_dir} was exported before "
                         "model.block8.onnx, the layout a CPU without AVX-512 runs ~1.4x faster; add it with: "
                         f"bindcnn export --model {self.model_dir}")
            self.session = ort.InferenceSession(str(self.model_dir / self.graph),
                                                sess_options=session_options(self.settings), providers=[CPU_PROVIDER])
            if self.settings.split and self.settings.threads > 1:
                self.pool = ThreadPoolExecutor(self.settings.threads, thread_name_prefix="bindcnn-ort")
        self.providers: list[str] = self.session.get_providers()
        self.chunk_size: int = int(chunk_size or self.settings.chunk)
        # Always (16 sequences, ~1 ms): refuse an ONNX file that does not reproduce the SavedModel's logits.
        tolerance = FINGERPRINT_TOLERANCE_GPU if self.device == "cuda" else FINGERPRINT_TOLERANCE
        probe = probe_inputs(self.length)
        check_fingerprint(self.metadata, self._run(probe)[1], f"the ONNX model ({self.graph})", tolerance)
        if self.graph != ONNX_FILE:  # model.onnx, the contract's file, must agree too (the engines are checked by it)
            reference = ort.InferenceSession(model, providers=[CPU_PROVIDER])
            logit = reference.run(["logit"], {self.input_name: probe})[0].reshape(-1)
            check_fingerprint(self.metadata, logit, "the ONNX model (model.onnx)", tolerance)
        log.info("model %s:%s on %s: %s (%s)", self.metadata["name"], self.metadata["version"], self.providers,
                 self.settings.name, self.source)

    def _cpu_settings(self, threads: int) -> tuple[Settings, str]:
        """The settings of metadata.json's runtime_plan when it was tuned for this model, machine and thread
        count (serving.tuning.plan_settings); else the fixed defaults."""
        if PLAN_KEY in self.metadata:
            from serving.tuning import plan_settings

            tuned = plan_settings(self.metadata, threads)
            if tuned is not None:
                return tuned, f"{PLAN_KEY} in metadata.json (bindcnn tune)"
        return Settings(threads=threads), "fixed defaults"

    @property
    def device(self) -> str:
        return "cuda" if self.providers and self.providers[0] == "CUDAExecutionProvider" else "cpu"

    def _run_one(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x: (n, L, 4) float32 -> (prob (n,), logit (n,)): one session.run."""
        prob, logit = self.session.run(OUTPUTS, {self.input_name: x})
        return prob.reshape(-1), logit.reshape(-1)

    def _runs(self, n: int, rows: Callable[[int, int], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """prob (n,), logit (n,) of the n rows that rows(start, stop) gives as (stop - start, L, 4) float32:
        runs of at most chunk_size rows, on the pool's threads when the settings split the batch (the one function
        that does; concurrent.futures and the public session.run)."""
        ways = self.settings.threads if self.pool is not None else 1
        bounds = part_bounds(n, self.chunk_size, ways)
        if len(bounds) == 1:
            return self._run_one(rows(0, n))
        one = lambda ab: self._run_one(rows(*ab))  # noqa: E731
        parts = list(self.pool.map(one, bounds)) if self.pool is not None else [one(ab) for ab in bounds]
        return np.concatenate([p for p, _ in parts]), np.concatenate([z for _, z in parts])

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x: (N, L, 4) float32 C-contiguous -> (prob (N,), logit (N,))."""
        return self._runs(len(x), lambda a, b: x[a:b])

    def predict_onehot(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """x: (N, L, 4) float32 (already validated) -> probability (N,), logit (N,) float32.

        With reverse_complement_average, both strands are scored and their logits averaged
        (probability = sigmoid of the mean logit)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        prob, logit = self._run(x)
        if reverse_complement_average:
            return average_strands(logit, self._run(np.ascontiguousarray(reverse_complement(x)))[1])
        return {"probability": prob, "logit": logit}

    def predict_codes(self, codes: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """codes: (N, L) uint8, 0-3 = the alphabet's letters, 4 = N (serving.dna.encode_codes; already
        validated) -> probability, logit (N,) float32. Cheaper than predict_onehot from text: each run's rows
        are expanded to one-hot just before it, so the float array never exists whole."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        prob, logit = self._runs(len(codes), lambda a, b: codes_to_onehot(codes[a:b]))
        if reverse_complement_average:
            rc = np.ascontiguousarray(np.where(codes < 4, 3 - codes, codes)[:, ::-1])  # complement, reversed
            return average_strands(logit, self._runs(len(rc), lambda a, b: codes_to_onehot(rc[a:b]))[1])
        return {"probability": prob, "logit": logit}

    def predict_sequences(self, sequences: Sequence[str], reverse_complement_average: bool = False
                          ) -> dict[str, np.ndarray]:
        """sequences: N strings of the model's length (ACGTN, any case) -> probability, logit (N,)."""
        return self.predict_codes(encode_codes(sequences, self.length, self.alphabet), reverse_complement_average)

    def predict_array(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """A client's array ((N, L, 4) or (N, 4, L), any 0/1 numeric dtype) -> probability, logit."""
        return self.predict_onehot(check_onehot(x, self.length), reverse_complement_average)

    def describe(self) -> dict[str, Any]:
        """What /model and benchmarks report: providers, device, versions and the settings with their source."""
        import onnxruntime as ort

        return {
            "providers": self.providers,
            "device": self.device,
            "onnxruntime": ort.__version__,
            "available_providers": ort.get_available_providers(),
            "graph": {"file": self.graph, "why": self.graph_reason},
            "settings": {**asdict(self.settings), "chunk": self.chunk_size, "name": self.settings.name,
                         "source": self.source},
        }

    def close(self) -> None:
        """Stop the pool's threads (the session is freed with the object)."""
        if self.pool is not None:
            self.pool.shutdown(wait=False)
