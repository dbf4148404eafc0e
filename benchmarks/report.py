"""Markdown pieces shared by every benchmark report: tables, number format, the target rows, the machine line.
It exists so each section module only measures, and words its verdicts from its own run's figures."""
from __future__ import annotations

import datetime as dt
import os
import platform
import re
import sys
from pathlib import Path

from serving.versions import package_versions

ROOT = Path(__file__).resolve().parents[1]
BENCH_PACKAGES = ("numpy", "onnxruntime-gpu", "onnx", "tensorflow", "keras", "tf2onnx", "bentoml")
TARGET_ROWS: list[tuple[str, str, str, bool | None, str]] = []  # (target, goal, measured, met, verdict)
EARLIER = "a 2-core AMD EPYC VM with AVX-512"  # where the figures in NOTES were measured

# Fixed text, labelled as notes on how the code was tuned: every figure in it says it was measured earlier.

NOTES = f"""## Notes: how the code was tuned (not measured in this run)

Figures in these notes were measured earlier on {EARLIER}, while tuning; they explain the choices in the code.
The tables above are this run's measurements.

- **ONNX graph** (training/onnx_graph.py, used by training/export.py for this architecture; parity with the
  SavedModel still checked at export, <= 1e-5): the conv runs as an NCHW 2-D conv (1 x 19) with the 24 filters
  zero-padded to 32 (whole 16-channel blocks, training/onnx_graph.py `CHANNEL_BLOCK`), directly followed by ReLU
  and MaxPool. With whole blocks ONNX Runtime's NCHWc transformer keeps conv+ReLU+pool in its blocked layout (ReLU
  fused) and reorders only the pooled (8-position) tensor. tf2onnx's graph wraps the conv in Unsqueeze/Squeeze,
  so the full 200-position conv output was reordered back to NCHW before an unfused ReLU and the pool: in a
  single-thread profile at batch 1000 that reorder alone took ~2.5 of ~11.7 ms (measured earlier). The dense
  rows are permuted to ONNX's flatten order at export. Section 1's 'direct graph / tf2onnx graph' row measures
  the difference in this run.
- **Fixed session settings, chosen by measurement** (serving/predictor.py; `python -m benchmarks.ort_settings`
  measures them against ONNX Runtime's defaults, docs/performance.md "ONNX Runtime settings"): one session on
  model.onnx with one intra-op thread, each batch cut into runs of 128 that the predictor's Python threads (one per
  core given) run at once. Nothing is timed at start. The first landing's fixed options (no spinning, chunks of 1024)
  were slower than ONNX Runtime's defaults on a 2-core Intel Xeon (Skylake); measured while tuning (CPU time, one
  thread, this AMD EPYC): the conv's output stays in cache when a run holds <= 256 sequences (~93k sequences/s per
  core) and not at 1024 (~78k), and two single-thread runs side by side scaled better than one two-thread session
  on 2 cores. `bindcnn tune` may store other settings for one machine in the model's metadata.json.
- **Tried, not kept** (measured earlier): a 1-D Conv graph (no NCHWc path: ~1.3x slower than the blocked 2-D
  conv); an im2col (Gather + MatMul) graph (2x slower); saving ONNX Runtime's optimised model (ONNX Runtime
  warns the NCHWc form is hardware-specific, and session creation is well under 0.1 s anyway). While tuning for
  issue 15 (CPU time, one thread, AMD EPYC): "phase" graphs that compute P neighbouring positions per row (input
  reshaped to (L/P, 4P), Slice+Concat im2col + MatMul, max-pool as ReduceMax) ran 0.35-0.9x model.onnx for P = 1-8;
  the same as a Conv with 4P input channels 0.6-0.9x (ONNX Runtime reorders the input to 16-channel blocks, which
  doubles the work for P = 2); uint8 codes cast and one-hot-expanded inside the graph (Gather) 0.86x (numpy's
  expansion per run, serving/predictor.py, costs less).
- **Encoding** (serving/dna.py): one-hot rows are copied as single 16-byte items with `take()`, and codes come
  from one `bytes.translate` through a 256-byte table (`ascii_codes`; a 65,536-entry pair table read with `take()`
  was as fast alone but widened its index to int64 first: 13 MB to fault in and zero per 16,384-record batch, 39 vs
  28 ms of a 200,000-record score run). `check_onehot` tests 'one base per position' with four
  strided adds instead of a sum over the length-4 axis (measured earlier: 2.7 -> 0.7 ms per 1000 sequences).
- **FASTA** (serving/fasta.py): ~1 MB of text at a time; numpy finds the line breaks and header lines,
  one boolean compress joins the sequence lines, one gather + one decode + one split gives the headers (blanks at
  line ends and UTF-8 text handled by the same parser). `score --local` took 1.1-1.3x as long with a line-by-line
  parser (issue 23). gzip is decompressed one block ahead on another thread with ISA-L
  (python-isal: 0.044 vs 0.12 s for zlib on the 42 MB file; both release the GIL). With the in-process predictor,
  `score` reads, checks and writes on its own thread while the predictor's threads run each batch; it reads ahead
  on a second thread only where the model runs elsewhere (a service, a GPU).
- **Server answers** (serving/service/app.py): BentoML writes each endpoint's answer from what it returns (a dict of
  score lists); the raw-body route /raw/predict_codes (serving/service/routes.py, a Starlette app mounted with
  BentoML's public mount_asgi_app) takes the code bytes without multipart parsing or a temporary file. The scoring
  client sends code bytes there with httpx (serving/client.py); the standard library's http.client took less client
  CPU but made `score --url` only ~1.09x faster (issue 23), not enough to keep a second HTTP client. A request
  passes two ASGI middlewares (the body cap and upload checks, the 4xx shape and counts).
- **Where HTTP time goes** (measured earlier): a sampling profile of the predictor worker during /predict_onehot
  put ~70% of the request in `session.run`; the rest was the upload spooled to a temporary file for the `Path`
  parameter, `check_onehot` (~0.7 ms) and sending the response (multipart parsing itself ~0.15 ms).
  `session.run` was ~10-30% slower per request in the server than back-to-back in a loop (caches and the
  sleeping pool thread are cold after the Python work). With the cores shared by server and client, even
  perfect overlap of requests cannot beat in-process CPU / (server + client CPU) per request: section 3's CPU
  column gives both for this run.
- **Many small clients** (section 4): each single-sequence request costs the server a fixed amount of CPU (HTTP,
  parsing, the response) against microseconds of model time per sequence, so throughput is bounded by
  cores / (server CPU per request). /predict_one uses BentoML's adaptive batching (`batchable=True`), and the work
  spreads over BentoML's own workers (one per core); on many machines, replicas behind a Kubernetes Service or a
  load balancer (deploy/). The benchmark's own client is a raw keep-alive socket client so that its CPU stays
  small.
- **GPU**: section 8 runs benchmarks/bench_gpu.py where nvidia-smi or /dev/nvidia0 exists: the provider of every
  node from a session profile, agreement with the CPU (TF32 on and off), IO binding and a float16 graph. The last
  GPU run is benchmarks/RESULTS-gpu.md.
"""


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:.2f}"


def band(value: float, bands: list[tuple[float, str]], below: str) -> str:
    """The word for `value`: the first (threshold, word) with value >= threshold (thresholds high to low)."""
    return next((word for threshold, word in bands if value >= threshold), below)


def target(name: str, goal: str, value: float, threshold: float, unit: str = "x", note: str = "",
           lower_is_better: bool = False) -> None:
    """Add a row to the Targets table; the verdict compares this run's `value` with `threshold`."""
    met = value <= threshold if lower_is_better else value >= threshold
    if met:
        verdict = "met"
    elif lower_is_better:
        verdict = f"missed: {value / threshold:.2f}x the limit" if threshold else f"missed: {value:g}"
    else:
        verdict = f"missed: reached {value / threshold:.2f} of the target"
    TARGET_ROWS.append((name, goal, f"{value:.2f}{unit}", met, verdict + (f"; {note}" if note else "")))


def targets_table() -> str:
    return table(["target", "goal", "measured", "verdict"], [[t, g, m, n] for t, g, m, _, n in TARGET_ROWS])


def machine(packages: tuple[str, ...] = BENCH_PACKAGES) -> dict:
    """CPU model (from /proc/cpuinfo), cores, AVX-512, reported clock, RAM, OS, package versions, load."""
    cpu = platform.processor() or platform.machine()
    flags, mhz = "", 0.0
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = re.search(r"model name\s*:\s*(.*)", info).group(1).strip()
        flags = re.search(r"flags\s*:\s*(.*)", info).group(1)
        mhz = float(re.search(r"cpu MHz\s*:\s*([0-9.]+)", info).group(1))
    except (OSError, AttributeError):
        pass
    mem = 0
    try:
        mem = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024**2
    except (OSError, AttributeError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "avx512": "avx512f" in flags, "mhz": mhz, "mem_gb": mem,
            "os": platform.platform(), "node": platform.node(), "versions": package_versions(packages),
            "load": os.getloadavg()}


def machine_line(info: dict | None = None, node: bool = False) -> str:
    """'AMD EPYC 9B14, 2 cores with AVX-512, 23 GiB RAM, Linux-...; python 3.11.7, numpy ...'."""
    info = info or machine()
    return (f"{info['node'] + ': ' if node else ''}{info['cpu']}, {info['cores']} cores"
            f"{' with AVX-512' if info['avx512'] else ''}, {info['mem_gb']} GiB RAM, {info['os']}; "
            + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))


def header(command: str, seconds: float, quick: bool, info: dict, prep: dict, source: Path | None) -> str:
    """The report's opening lines: how it was made, the machine, the model, the load, the Targets table."""
    load_end = os.getloadavg()
    weights = f"weights of {source}" if source else "untrained weights: speed does not depend on them"
    return "\n".join([
        "# bindcnn benchmarks",
        "",
        f"Generated by `{command}` on {dt.datetime.now().astimezone().isoformat(timespec='minutes')} in "
        f"{seconds:.0f} s{' (--quick: few repetitions, small inputs)' if quick else ''}.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores{' with AVX-512' if info['avx512'] else ''}, "
        f"{info['mem_gb']} GiB RAM, {info['os']}",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in info["versions"].items()),
        f"- Model: {prep['parameters']:,} parameters, {prep['flops']['total']:,} FLOP per 200-nt sequence; "
        f"exported by the current training/export.py ({weights}).",
        f"- Load average (1 min) at start {info['load'][0]:.1f}, at end {load_end[0]:.1f}: the machine may be "
        "shared, other processes may have been running; figures are medians of several runs and the ratios "
        "(measured in the same run) are what to compare.",
        "",
        "## Targets",
        "",
        targets_table(),
    ])


def publish(text: str, passed: bool, out, log_name: str, log_text: str) -> int:
    """Print a run's report, the tail of a log when it failed, append it to `out` (if given); the exit code."""
    print(text)
    if not passed:
        print(f"{log_name} (last 3000 characters):\n{log_text[-3000:]}", file=sys.stderr)
    if out:
        with open(out, "a") as fh:
            fh.write(text + "\n")
        print(f"appended to {out}", file=sys.stderr)
    return 0 if passed else 1
