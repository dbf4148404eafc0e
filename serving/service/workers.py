"""How many predictor workers a server runs and how many ONNX Runtime threads each uses: on CPU one worker per
core with one thread each (concurrent small clients scale with the cores), on GPU one worker per GPU.

BINDCNN_WORKERS and BINDCNN_THREADS override the defaults (docs/serving.md "Workers and settings"). Read once, at import, because
BentoML reads a service's worker count from its decorator.
"""
from __future__ import annotations

import glob
import math
import os
from pathlib import Path

from serving.service.limits import _positive_int

WORKERS_ENV = "BINDCNN_WORKERS"
THREADS_ENV = "BINDCNN_THREADS"  # intra-op threads of each worker's ONNX Runtime session (serving.predictor)
TRACING_ENV = "BINDCNN_TRACING"  # 1: BentoML's OpenTelemetry spans on every request (its tracing config decides)
TIMEOUT_S = 300  # one request at most (a 1 Mb /scan); BentoML's default is 60


def available_cpus() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a Kubernetes CPU limit)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def gpu_count() -> int:
    """NVIDIA GPUs this process may use: CUDA_VISIBLE_DEVICES when set, else the /dev/nvidiaN devices."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return len(glob.glob("/dev/nvidia[0-9]*"))


def worker_count() -> int:
    """BINDCNN_WORKERS, else one per GPU where there are GPUs, else one per available core."""
    return _positive_int(WORKERS_ENV, gpu_count() or available_cpus())


def threads_per_worker(workers: int | None = None) -> int:
    """BINDCNN_THREADS, else the available cores shared out among the workers (1 with one worker per core)."""
    workers = workers or worker_count()
    return _positive_int(THREADS_ENV, max(1, available_cpus() // workers))


def predictor_config() -> dict:
    """Keyword arguments of the predictor's @bentoml.service: its workers, request timeout, no probing of the
    explainer from /readyz (serving.service.explainer_link.ExplainerLink.ready does that, without hanging), and
    tracing_config()."""
    return {"workers": worker_count(), "traffic": {"timeout": TIMEOUT_S}, "runner_probe": {"enabled": False},
            **tracing_config()}


def tracing_config() -> dict:
    """No OpenTelemetry span per request unless BINDCNN_TRACING=1: BentoML's middleware made one for every request
    even with its default sample rate of 0 (nothing exported); a worker's CPU per /predict_one request at 32 clients
    was 0.81-0.95 ms with it and 0.48-0.69 ms without (benchmarks section 4, four runs each). Its only other trace
    is the X-BentoML-Request-ID answer header. With BINDCNN_TRACING=1, BentoML's tracing configuration applies."""
    if os.environ.get(TRACING_ENV, "0") not in ("", "0"):
        return {}
    return {"tracing": {"excluded_urls": [".*"]}}  # regular expressions, searched in each request's URL


def pin_gpu(worker_index: int | None = None) -> str | None:
    """With several GPUs visible, make worker i (1-based; default: this BentoML worker's index) see only GPU
    (i-1) mod n, before CUDA starts: BentoML gives every worker all of them. Returns the device now visible, or
    None when nothing changed."""
    if worker_index is None:
        import bentoml

        worker_index = bentoml.server_context.worker_index
    n = gpu_count()
    if n < 2 or not worker_index:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = [d.strip() for d in visible.split(",")] if visible else [str(i) for i in range(n)]
    os.environ["CUDA_VISIBLE_DEVICES"] = devices[(worker_index - 1) % len(devices)]
    return os.environ["CUDA_VISIBLE_DEVICES"]
