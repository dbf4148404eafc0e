"""The scan engine: every window of a long sequence scored through the model folder's scan graph (scan.onnx,
training/scan_graph.py), which computes the convolution once per base instead of once per window and per base.

Each window's score is its score alone (within float32 rounding): the graph corrects the window's own zero padding.
Long sequences go through in runs of a bounded number of bases (RUN_BASES at stride 1) that overlap by L - stride,
so memory stays flat. Reverse strand (rc): window s of a sequence of n bases is window n - L - s of its reverse
complement; logits are averaged as every predictor does (serving.dna.average_strands). Model folders without a scan graph, and predictors without a
model folder (a service's client, toys), are scored window by window (engine_for returns None).
"""
from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from serving.artifact import FINGERPRINT_TOLERANCE, FINGERPRINT_TOLERANCE_GPU, check_fingerprint, probe_inputs
from serving.console import say_once
from serving.dna import average_strands, codes_to_onehot, sigmoid

SCAN_FILE = "scan.onnx"
SCAN_INPUTS = ("dna", "starts")  # (bases, 4) float32 one-hot; (windows,) int64 window starts
SCAN_OUTPUTS = ("logit", "prob")  # (windows,) float32 each
METADATA_KEY = "scan_graph"
RUN_BASES = 1 << 14  # bases per session.run at stride 1 (~30 MB of intermediate tensors)
RUN_WINDOWS = 4096  # at larger strides runs grow to hold this many windows (fewer, larger runs: measured faster) ...
MAX_RUN_BASES = 1 << 18  # ... up to this many bases (~25 MB of convolution outputs)


class ScanEngine:
    """scan.onnx of a model folder on ONNX Runtime, with the providers the predictor got.

    scan_codes(codes (n,) uint8, stride, rc) / scan_onehot(x (n, 4) float32, ...) -> (probability (W,), logit
    (W,)) float32 of the windows starting at 0, stride, 2 * stride, ..., W = (n - L) // stride + 1."""

    def __init__(self, model_dir: str | Path, providers: list[str], metadata: dict[str, Any], length: int,
                 run_bases: int | None = None, threads: int | None = None):
        """run_bases: bases per session.run at every stride (default: RUN_BASES at stride 1, growing with the stride
        to hold RUN_WINDOWS windows, up to MAX_RUN_BASES). threads: on CPU, runs computed at once, each on one
        thread (default: the CPUs this process may use). The graph is ~35 small operators: one thread per run and
        several runs at once measured 1.3-1.6x the windows/s of ONNX Runtime's threads inside each operator on a
        shared 2-core machine, whose waits between operators spin or stall when a core is taken. On CUDA: one run
        at a time, default options."""
        import onnxruntime as ort

        self.model_dir, self.metadata, self.length = Path(model_dir), metadata, int(length)
        self.run_bases = None if run_bases is None else max(int(run_bases), self.length)
        path = self.model_dir / metadata[METADATA_KEY]["file"]
        options = ort.SessionOptions()
        cpu = list(providers)[0] == "CPUExecutionProvider"
        if cpu:
            options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        self.providers: list[str] = self.session.get_providers()
        self.threads = max(1, int(threads or len(os.sched_getaffinity(0)))) if self.device == "cpu" else 1
        self._pool = None
        self._check_fingerprint()

    @classmethod
    def from_predictor(cls, predictor, run_bases: int | None = None) -> "ScanEngine":
        """The engine of a serving.predictor.Predictor's model folder, on the same providers (and as many CPU
        threads as its `threads`, when it says)."""
        return cls(predictor.model_dir, predictor.providers, predictor.metadata, predictor.length, run_bases,
                   getattr(predictor, "threads", None))

    def _map(self, fn: Callable, items: list) -> Iterator:
        """fn over items, in order: on `threads` threads (ONNX Runtime releases the GIL) when there are several."""
        if self.threads == 1 or len(items) < 2:
            return map(fn, items)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bindcnn-scan")
        return self._pool.map(fn, items)

    @property
    def device(self) -> str:
        return "cuda" if self.providers[0] == "CUDAExecutionProvider" else "cpu"

    def _check_fingerprint(self) -> None:
        """The probe sequences laid end to end, one window each: their logits must be the SavedModel's recorded at
        export, as the predictor's are (refuses a scan.onnx that does not come from the same weights)."""
        x = probe_inputs(self.length)
        starts = np.arange(len(x), dtype=np.int64) * self.length
        logit = self._run(np.ascontiguousarray(x.reshape(-1, 4)), starts)[1]
        tolerance = FINGERPRINT_TOLERANCE_GPU if self.device == "cuda" else FINGERPRINT_TOLERANCE
        check_fingerprint(self.metadata, logit, f"the scan graph ({SCAN_FILE})", tolerance)

    def _run(self, x: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x: (n, 4) float32 contiguous, starts: (W,) int64 -> (prob (W,), logit (W,)) float32."""
        logit, prob = self.session.run(list(SCAN_OUTPUTS), {SCAN_INPUTS[0]: x, SCAN_INPUTS[1]: starts})
        return prob, logit

    def window_logits(self, x: np.ndarray, starts: np.ndarray, rc: bool = False) -> np.ndarray:
        """x: (n, 4) float32 one-hot, starts: (W,) int64 with 0 <= s <= n - L -> logits (W,) float32 of those
        windows (with rc: the mean of both strands' logits). One run: keep n to a few RUN_BASES."""
        x = np.ascontiguousarray(x, np.float32)
        starts = np.ascontiguousarray(starts, np.int64)
        logit = self._run(x, starts)[1]
        if not rc:
            return logit
        back = self._run(np.ascontiguousarray(x[::-1, ::-1]), (len(x) - self.length) - starts)[1]
        return average_strands(logit, back)["logit"]

    def scan_onehot(self, x: np.ndarray, stride: int = 1, rc: bool = False,
                    on_windows: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every window of x: (n, 4) float32 (n >= L) at `stride` -> (probability (W,), logit (W,)) float32;
        on_windows(count) after each run."""
        return self._scan(len(x), lambda lo, hi: x[lo:hi], stride, rc, on_windows)

    def scan_codes(self, codes: np.ndarray, stride: int = 1, rc: bool = False,
                   on_windows: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """As scan_onehot, from codes: (n,) uint8 (serving.dna: 0-3 ACGT, 4 N), expanded run by run."""
        return self._scan(len(codes), lambda lo, hi: codes_to_onehot(codes[lo:hi]), stride, rc, on_windows)

    def _scan(self, n: int, bases: Callable[[int, int], np.ndarray], stride: int, rc: bool,
              on_windows: Callable[[int], None] | None) -> tuple[np.ndarray, np.ndarray]:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        L = self.length
        total = (n - L) // stride + 1 if n >= L else 0
        run_len = self.run_bases or min(max(RUN_BASES, (RUN_WINDOWS - 1) * stride + L), max(MAX_RUN_BASES, L))
        per_run = max(1, (run_len - L) // stride + 1)
        logit = np.empty(total, np.float32)

        def run(i0: int) -> np.ndarray:  # the windows i0 .. i0 + per_run - 1, their bases expanded here
            starts = np.arange(min(per_run, total - i0), dtype=np.int64) * stride
            return self.window_logits(bases(i0 * stride, i0 * stride + int(starts[-1]) + L), starts, rc)

        for i0, part in zip(range(0, total, per_run), self._map(run, list(range(0, total, per_run)))):
            logit[i0:i0 + len(part)] = part
            if on_windows is not None:
                on_windows(len(part))
        return sigmoid(logit), logit


_ENGINES: dict[int, Any] = {}
_LOCK = threading.Lock()


def per_predictor(cache: dict[int, Any], predictor, make: Callable[[], Any]) -> Any:
    """make()'s result, made once per predictor object (kept while the predictor lives; threads that ask at once
    share one). A predictor that cannot be weakly referenced gets a new one each time."""
    with _LOCK:
        key = id(predictor)
        if key in cache:
            return cache[key]
        value = make()
        try:
            weakref.finalize(predictor, cache.pop, key, None)
        except TypeError:
            return value
        cache[key] = value
        return value


def has_scan_graph(metadata: dict[str, Any]) -> bool:
    """True when the model folder's metadata lists a scan graph (exported by this version of training/export.py)."""
    spec = metadata.get(METADATA_KEY)
    return isinstance(spec, dict) and spec.get("file") in metadata.get("files", {})


def engine_for(predictor) -> ScanEngine | None:
    """The scan engine of an in-process predictor (one per predictor, made on first use), or None: scoring then goes
    window by window. None for a predictor without a model folder (serving.client.HttpPredictor, test toys) and for
    a model folder exported before scan graphs existed (said once per folder, with the command that adds one)."""
    return per_predictor(_ENGINES, predictor, lambda: _make_engine(predictor))


def _make_engine(predictor) -> ScanEngine | None:
    metadata, model_dir = getattr(predictor, "metadata", None), getattr(predictor, "model_dir", None)
    if not isinstance(metadata, dict) or model_dir is None:
        return None
    if has_scan_graph(metadata):
        return ScanEngine.from_predictor(predictor)
    say_once(f"no scan graph: {model_dir}", f"note: {model_dir} has no scan graph ({SCAN_FILE}): windows are scored "
             f"one by one (slower); add it with: bindcnn export --model {model_dir}")
    return None
