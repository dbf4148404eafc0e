"""Runs one-hot batches through ONNX Runtime the way a Plan says: which graph file, which session options, how
many sequences per session.run and whether chunks run on intra-op threads or on Python threads.

serving/calibration.py chooses the Plan per machine; serving/predictor.py runs it. Never imports TensorFlow.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from serving.dna import codes_to_onehot

CPU_PROVIDER = "CPUExecutionProvider"
SMALL_BATCH = 8  # batches up to this size run on the plan's small-batch session
OPTION_SETS = ("ort-default", "spin", "nospin")
OUTPUTS = ["prob", "logit"]


@dataclass(frozen=True)
class Plan:
    """How to run the model. graph: "model.onnx" or a metadata onnx_variants name; file: its file in the model
    folder; options: one of OPTION_SETS; threads: intra-op threads of the session (0: ONNX Runtime's default,
    its physical core count) or, when parallel, Python threads sharing one single-thread session; chunk:
    sequences per session.run; small: the session for batches <= SMALL_BATCH, "single" (one thread, same
    graph), "main" (the main session) or "ort-default" (model.onnx with default options)."""

    graph: str = "model.onnx"
    file: str = "model.onnx"
    options: str = "ort-default"
    threads: int = 0
    parallel: bool = False
    chunk: int = 4096
    small: str = "main"

    @property
    def name(self) -> str:
        how = f"parallel x{self.threads}" if self.parallel else f"threads {self.threads or 'default'}"
        return f"{self.graph} | {self.options} | {how} | chunk {self.chunk}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "name": self.name}

    def with_(self, **changes) -> "Plan":
        return replace(self, **changes)


def session_options(preset: str = "nospin", threads: int = 0):
    """ONNX Runtime SessionOptions. preset "ort-default": untouched defaults (only the thread count when given);
    "spin"/"nospin": graph optimisation ALL (the NCHWc blocked conv needs it), sequential execution, memory
    arena on, `threads` intra-op threads whose idle pool threads spin (fastest back-to-back) or sleep (leave the
    CPU to an HTTP server between runs)."""
    import onnxruntime as ort

    if preset not in OPTION_SETS:
        raise ValueError(f"unknown session options {preset!r}; choose from {', '.join(OPTION_SETS)}")
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    if preset == "ort-default":
        return opts
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.enable_cpu_mem_arena = True
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if preset == "spin" else "0")
    return opts


def open_session(model_dir: Path, file: str, preset: str, threads: int, providers: list[str]):
    import onnxruntime as ort

    return ort.InferenceSession(str(Path(model_dir) / file), sess_options=session_options(preset, threads),
                                providers=providers)


def _run_of(session):
    """session.run(outputs, feed) for a CPU session without ONNX Runtime's per-call Python checks (feed names,
    graph capture, OrtValue ownership; the predictor's feeds are always its own): ~1 of ~20 us at batch 1 on a
    2-core EPYC. Other providers keep session.run and its fallback on an execution provider's failure."""
    fast = getattr(session, "bindcnn_run", None)
    if fast is None:
        inner = getattr(session, "_sess", None)
        if inner is not None and session.get_providers()[0] == CPU_PROVIDER:
            fast = lambda outputs, feed, _run=inner.run: _run(outputs, feed, None)  # noqa: E731
        else:
            fast = session.run
        session.bindcnn_run = fast
    return fast


class Job:
    """One batch split into parts, run by whichever threads call work(): the plan's pool threads, started at once,
    and the caller in finish(), which returns (prob (n,), logit (n,)) float32 when every part is done. Between the
    start and finish() the caller may do other work (score reads its next batch) while the pool keeps going."""

    def __init__(self, n: int, parts: list[tuple[int, int]], one):
        self.n, self._one = n, one
        self._parts = iter(parts)
        self._lock = threading.Lock()
        self._whole = parts == [(0, n)]
        self.helpers: list = []
        self.prob, self.logit = (None, None) if self._whole else (np.empty(n, np.float32), np.empty(n, np.float32))

    def work(self) -> None:
        while True:
            with self._lock:
                ab = next(self._parts, None)
            if ab is None:
                return
            try:
                self.prob[ab[0]:ab[1]], self.logit[ab[0]:ab[1]] = self._one(*ab)
            except BaseException:
                with self._lock:
                    self._parts = iter(())  # the other threads stop at their next part
                raise

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        if self._whole:
            return self._one(0, self.n)
        try:
            self.work()
        finally:  # a helper still queued behind another job's finds nothing left: drop it rather than wait for it
            wait([helper for helper in self.helpers if not helper.cancel()])  # none left writing into the arrays
        for helper in self.helpers:
            if not helper.cancelled():
                helper.result()  # a part's error, raised here
        return self.prob, self.logit


def _parts(n: int, chunk: int, ways: int) -> list[tuple[int, int]]:
    """(start, stop) of equal parts of n rows: at most `chunk` rows each, a multiple of `ways` parts when
    there is more than one, so parallel threads get the same work."""
    count = -(-n // max(1, chunk))
    if count == 1 and ways == 1:
        return [(0, n)]
    count = min(n, -(-max(count, ways) // ways) * ways)
    return [(i * n // count, (i + 1) * n // count) for i in range(count)]


class Runner:
    """Sessions for one Plan. run(x: (N, L, 4) float32) / run_codes(codes: (N, L) uint8, 4 = N)
    -> (prob (N,), logit (N,)) float32. Thread-safe (ONNX Runtime sessions are)."""

    def __init__(self, model_dir: str | os.PathLike, plan: Plan, input_name: str,
                 providers: list[str] | None = None):
        self.model_dir, self.plan, self.input_name = Path(model_dir), plan, input_name
        providers = providers or [CPU_PROVIDER]
        threads = 1 if plan.parallel else plan.threads
        self.session = open_session(self.model_dir, plan.file, plan.options, threads, providers)
        self.providers: list[str] = self.session.get_providers()
        on_cpu = self.providers[0] == CPU_PROVIDER
        self._small_args = None  # the small-batch session, opened at its first use (a command may never need it)
        if on_cpu and plan.small == "single" and threads != 1:
            self._small_args = (self.model_dir, plan.file, "nospin", 1, providers)
        elif on_cpu and plan.small == "ort-default" and (plan.file, plan.options) != ("model.onnx", "ort-default"):
            self._small_args = (self.model_dir, "model.onnx", "ort-default", plan.threads, providers)
        self._small = None if self._small_args else self.session
        self._lock = threading.Lock()
        # The calling thread runs parts too (Job.finish), so the pool holds the plan's other threads.
        self.pool = ThreadPoolExecutor(plan.threads - 1, thread_name_prefix="bindcnn-ort") \
            if plan.parallel and plan.threads > 1 else None

    @property
    def small_session(self):
        """The session for batches <= SMALL_BATCH (the plan's `small`)."""
        if self._small is None:
            with self._lock:
                if self._small is None:
                    self._small = open_session(*self._small_args)
        return self._small

    def _one(self, session, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, z = _run_of(session)(OUTPUTS, {self.input_name: x})
        return p.reshape(-1), z.reshape(-1)

    def _start(self, n: int, one) -> Job:
        """A Job calling one(start, stop) -> (prob, logit) for every part of n rows, begun on the pool's threads
        when the plan is parallel (otherwise the parts all run in finish())."""
        parts = _parts(n, self.plan.chunk, self.plan.threads if self.pool is not None else 1)
        job = Job(n, parts, one)
        if self.pool is not None and len(parts) > 1:
            job.helpers = [self.pool.submit(job.work) for _ in range(min(self.plan.threads - 1, len(parts) - 1))]
        return job

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x: (N, L, 4) float32, C-contiguous -> prob (N,), logit (N,)."""
        if len(x) <= SMALL_BATCH:  # inlined: at batch 1 each Python call is ~5% of the run
            p, z = _run_of(self._small or self.small_session)(OUTPUTS, {self.input_name: x})
            return p.reshape(-1), z.reshape(-1)
        return self._start(len(x), lambda a, b: self._one(self.session, x[a:b])).finish()

    def run_codes(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """codes: (N, L) uint8 (0-3 = alphabet, 4 = N) -> prob (N,), logit (N,); each part is expanded to
        one-hot just before its run, so the float array never exists whole (and stays in cache)."""
        return self.start_codes(codes).finish()

    def start_codes(self, codes: np.ndarray) -> Job:
        """run_codes begun on the pool's threads; Job.finish() completes it on the calling thread too."""
        if len(codes) <= SMALL_BATCH:
            return Job(len(codes), [(0, len(codes))], lambda a, b: self._one(self.small_session, codes_to_onehot(codes)))
        return self._start(len(codes), lambda a, b: self._one(self.session, codes_to_onehot(codes[a:b])))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False)
