"""The whole benchmark suite (`python -m benchmarks`, `make bench`): model throughput vs TensorFlow, encoding, HTTP,
adaptive batching, start-up, scanning, training, GPU; prints markdown tables (--write also saves them).

    python -m benchmarks [--quick] [--write benchmarks/RESULTS.md] [--model models/NAME] [--skip training,...]

Not part of the test suite. Figures are medians of several runs; the machine may be shared, so compare the
ratios measured in one run. Exit code 0 when the suite ran (targets missed are reported, not errors), 1 on failure.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import bench_inference as bi

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("inference", "encoding", "http", "batching", "startup", "scanning", "training", "gpu")
TARGET_ROWS: list[tuple[str, str, str, bool | None, str]] = []  # (target, goal, measured, met, note)


NOTES = """## Notes: what was tuned, what limits the rest

- **ONNX graph** (training/onnx_graph.py, used by training/export.py for this architecture; parity with the
  SavedModel still checked at export, <= 1e-5): the conv runs as an NCHW 2-D conv (1 x 19) with the 24 filters
  zero-padded to 32, directly followed by ReLU and MaxPool. With whole 16-channel blocks ONNX Runtime's NCHWc
  transformer keeps conv+ReLU+pool in its blocked layout (ReLU fused) and reorders only the pooled (8-position)
  tensor. tf2onnx's graph wraps the conv in Unsqueeze/Squeeze, so the full 200-position conv output was
  reordered back to NCHW before an unfused ReLU and the pool: in a single-thread profile at batch 1000 that reorder
  alone took ~2.5 of ~11.7 ms. The dense rows are permuted to ONNX's flatten order at export.
- **Session options** (serving/predictor.py `session_options`): graph optimisation ALL (the NCHWc transformer
  needs it), intra-op threads = cores, sequential execution, memory arena **on** with the Predictor running at
  most 1024 sequences per `session.run` (arena off cost 1.5-2.5x at batch 1000-4096 from page faults on fresh
  buffers; 1024-sequence chunks keep the arena near 35 MB), idle pool threads sleep instead of spinning (a spinning
  thread takes a core from the HTTP server on a 2-core machine: with spinning on, the server's CPU per
  1000-sequence /predict request rose from ~10 to ~17 ms; in-process it costs ~30% at batch 64, compare 'default
  SessionOptions' in section 1). Batches of <= 8 sequences run on a second,
  single-thread session, where waking a pool thread costs more than it saves (batch 1: ~60k -> ~86k/s).
- **Tried, not kept**: a 1-D Conv graph (no NCHWc path: ~1.3x slower than the blocked 2-D conv); an im2col
  (Gather + MatMul) graph (2x slower); saving ONNX Runtime's optimised model (ONNX Runtime warns the NCHWc form
  is hardware-specific, and session creation is well under 0.1 s anyway).
- **Encoding** (serving/encoding.py): one-hot rows are copied as single 16-byte items with `take()`, and codes are
  looked up with `take()`: ~3x faster than fancy indexing. `check_onehot` tests 'one base per position' with four
  strided adds instead of a sum over the length-4 axis (2.7 -> 0.7 ms per 1000 sequences).
- **HTTP limit**: a 1000-sequence request costs the model ~3.5 ms (both cores) and everything else ~4-5 ms,
  mostly single-threaded Python: BentoML's request path (body, JSON + pydantic validation of 1000 strings, the
  ASGI middleware, the response), the client's own JSON, loopback. A sampling profile of the predictor worker
  during /predict_onehot put ~70% of the request in `session.run`; the rest was the upload spooled to a
  temporary file for the `Path` parameter, `check_onehot` (~0.7 ms) and sending the response (multipart parsing
  itself measured ~0.15 ms). `session.run` itself is ~10-30% slower per request in the server than back-to-back
  in a loop (caches and the sleeping pool thread are cold after the Python work). With both cores shared, even
  perfect overlap of requests cannot beat in-process CPU / (server + client CPU) per request: the CPU column of
  section 3 shows that bound is itself near or below the targets.
- **Adaptive batching limit**: each single-sequence request costs the server ~1-2 ms of Python CPU (HTTP, pydantic,
  the batching queue, the response) against ~5 us of model time per sequence, so the server saturates at several
  hundred requests/s on 2 cores whatever the batch size; batches do form (see the mean batch size), the per-request
  overhead is what does not shrink. The benchmark's own client is a raw keep-alive socket client for this reason.
- **GPU**: not measured on this machine; section 8 fills itself in where nvidia-smi or /dev/nvidia0 exists, and
  reports `session.get_providers()` as proof of the CUDA provider. float16 was not tried (no GPU to measure it on).
"""


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:.2f}"


def target(name: str, goal: str, value: float, threshold: float, unit: str = "x", note: str = "",
           lower_is_better: bool = False) -> None:
    met = value <= threshold if lower_is_better else value >= threshold
    if met:
        verdict = "met"
    elif lower_is_better:
        verdict = f"missed: {value / threshold:.2f}x the limit" if threshold else f"missed: {value:g}"
    else:
        verdict = f"missed: reached {value / threshold:.2f} of the target"
    TARGET_ROWS.append((name, goal, f"{value:.2f}{unit}", met, verdict + (f"; {note}" if note else "")))


# ------------------------------------------------------------------------------------------- machine
def machine() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = re.search(r"model name\s*:\s*(.*)", info).group(1).strip()
        flags = re.search(r"flags\s*:\s*(.*)", info).group(1)
        mhz = float(re.search(r"cpu MHz\s*:\s*([0-9.]+)", info).group(1))
    except (OSError, AttributeError):
        mhz = 0.0
    vers = {"python": platform.python_version()}
    for dist in ("numpy", "onnxruntime-gpu", "onnx", "tensorflow", "keras", "tf2onnx", "bentoml"):
        try:
            vers[dist] = version(dist)
        except PackageNotFoundError:
            pass
    mem = 0
    try:
        mem = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024**2
    except (OSError, AttributeError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "avx512": "avx512f" in flags, "mhz": mhz, "mem_gb": mem,
            "os": platform.platform(), "versions": vers, "load": os.getloadavg()}


# ------------------------------------------------------------------------------------------- model
def bench_model(work: Path, source: Path | None) -> Path:
    """An export made by the current code (so model.onnx is what training.export writes today):
    re-exported from source/model.keras when given (trained weights), else a freshly initialised model."""
    out = work / "models" / "bench"
    code = (
        "import sys, numpy as np\n"
        "from training import quiet_tensorflow; quiet_tensorflow()\n"
        "import keras\n"
        "from training.export import KERAS_FILE, export\n"
        "from training.model import build_model\n"
        "from benchmarks.bench_inference import onehot_batch\n"
        "src = sys.argv[2]\n"
        "keras.utils.set_random_seed(0)\n"
        "m = keras.models.load_model(src + '/' + KERAS_FILE) if src else build_model(200)\n"
        "export(m, sys.argv[1], 'bench', onehot_batch(1024, int(m.input_shape[1]), seed=1),\n"
        "       {'note': 'benchmark copy' + (' of ' + src if src else ' (untrained weights)')})\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(out), str(source or "")], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if res.returncode != 0:
        raise RuntimeError(f"exporting the benchmark model failed:\n{res.stderr[-3000:]}")
    return out


# ------------------------------------------------------------------------------------------- 1
def section_inference(model: Path, work: Path, quick: bool, gflops: float, flops: dict, mhz: float
                      ) -> tuple[str, dict]:
    engines = ["ort", "ort-default", "ort-tf2onnx", "tf", "keras"]
    res = bi.measure(model, work, engines, rounds=1 if quick else 2, reps=2 if quick else 3,
                     seconds=0.15 if quick else 0.4)
    med = res["median"]
    batches = [str(b) for b in bi.BATCHES]
    rows = [[f"{bi.ENGINES[e]}"] + [fmt(med[e][b]) for b in batches] for e in engines]
    rows.append(["**ONNX Runtime (service) / TensorFlow**"] + [f"**{med['ort'][b] / med['tf'][b]:.2f}x**"
                                                              for b in batches])
    rows.append(["ONNX Runtime (service) / Keras predict"] + [f"{med['ort'][b] / med['keras'][b]:.1f}x"
                                                             for b in batches])
    rows.append(["ONNX Runtime: direct graph / tf2onnx graph (same options)"] +
                [f"{med['ort'][b] / med['ort-tf2onnx'][b]:.2f}x" for b in batches])
    per_seq = flops["total"]
    ceiling = gflops * 1e9 / per_seq
    best = max(med["ort"].values())
    executed = best * flops.get("executed", per_seq) / 1e9
    text = "## 1. In-process model throughput (sequences/s, median)\n\n" + table(
        ["engine"] + [f"batch {b}" for b in batches], rows)
    text += (f"\n\nCompute ceiling: the model costs {per_seq:,} FLOP per sequence (conv "
             f"{flops.get('conv', 0):,} + dense {flops.get('dense', 0):,} + logit {flops.get('logit', 0):,}). "
             f"Peak: a numpy float32 matmul (best of 2048^2 and 3072^2 products, both cores) measured "
             f"**{gflops:,.0f} GFLOP/s** in this run, so the ceiling is ~**{fmt(ceiling)} sequences/s**; ONNX "
             f"Runtime's best here ({fmt(best)}/s) is **{best / ceiling:.0%}** of it. Counting what it really "
             f"computes (filters padded to 32: {flops.get('executed', per_seq):,} FLOP per sequence) it runs at "
             f"{executed:,.0f} GFLOP/s, {executed / gflops:.0%} of the matmul figure (the clock in /proc/cpuinfo, "
             f"{mhz / 1000:.2f} GHz, is this VM's base clock, so no nominal peak is claimed): the model runs at the "
             "machine's compute limit; encoding and HTTP decide end-to-end speed.")
    ratio1000 = med["ort"]["1000"] / med["tf"]["1000"]
    target("ONNX Runtime at batch 1000 vs TensorFlow", ">= 1x", ratio1000, 1.0,
           note="limit: MLAS's conv kernel; see note below the table" if ratio1000 < 1 else "")
    target("ONNX Runtime at batch 1 vs TensorFlow", ">= 20x", med["ort"]["1"] / med["tf"]["1"], 20.0)
    return text, res


# ------------------------------------------------------------------------------------------- 2
def section_encoding(model: Path, work: Path, quick: bool, model_rate: float) -> str:
    """Encoding rates, each block timed right after a block of the model (ONNX Runtime, service options, batch
    1000) on the same sequences, so the ratio sees the same load."""
    from serving.encoding import encode
    from serving.fasta import read_fasta
    from serving.predictor import Predictor

    rng = np.random.default_rng(3)
    letters = np.array(list("ACGT"))
    n = 10_000 if quick else 50_000
    seqs = ["".join(r) for r in letters[rng.integers(0, 4, (n, 200))]]
    fa = work / "encoding.fa"
    fa.write_text("".join(f">r{i}\n{s[:80]}\n{s[80:160]}\n{s[160:]}\n" for i, s in enumerate(seqs)))
    x = encode(seqs, 200)
    pred = Predictor(model, device="cpu")
    chunks = [seqs[i:i + 1000] for i in range(0, n, 1000)]
    paths = {
        "`encode`, lists of 1000 strings": lambda: [encode(c, 200) is None for c in chunks],  # each freed at once
        f"`encode`, one list of {n:,} strings": lambda: encode(seqs, 200),
        f"`read_fasta` + `encode`, {n:,} records (80-column FASTA file)":
            lambda: encode([r.sequence for r in read_fasta(fa)], 200),
    }
    rates = {k: [] for k in paths}
    ratios = {k: [] for k in paths}
    for _ in range(3 if quick else 5):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            for i in range(0, n, 1000):
                pred.predict_onehot(x[i:i + 1000])
            ref = n / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            fn()
            r = n / (time.perf_counter() - t0)
            rates[name].append(r)
            ratios[name].append(r / ref)
    med = {k: statistics.median(v) for k, v in ratios.items()}
    rows = [[k, fmt(statistics.median(rates[k])), f"**{med[k]:.1f}x**", f"{statistics.median(rates[k]) / model_rate:.1f}x"]
            for k in paths]
    names = list(paths)
    target("Encoding (strings, 1000 per call) vs model", ">= 5x", med[names[0]], 5.0)
    target("FASTA read + encode vs model", ">= 5x", med[names[2]], 5.0,
           note="limit: serving/fasta.py's per-line Python reader, not the encoding" if med[names[2]] < 5 else "")
    return ("## 2. Encoding: strings/FASTA -> (N, 200, 4) float32 one-hot (sequences/s, median); each block timed "
            "right after a block of the model (ONNX Runtime, service options, batch 1000) on the same sequences\n\n"
            + table(["path", "sequences/s", "x model (interleaved)", f"x section 1 (batch 1000: {fmt(model_rate)}/s)"],
                    rows))


# ------------------------------------------------------------------------------------------- server
def start_server(model: Path, work: Path, env: dict[str, str] | None = None):
    """Register the model in a private BentoML home and start the real `bentoml serve` (tests/server.py);
    env: extra variables for the server. Returns (server, seconds from launch to /readyz 200)."""
    home = work / "bentoml"
    if os.environ.get("BENTOML_HOME") != str(home):
        shutil.rmtree(home, ignore_errors=True)
    os.environ["BENTOML_HOME"] = str(home)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    from serving.store import register
    from tests.server import Server

    tag = register(model)
    server = Server(env={"BINDCNN_MODEL": tag, "BENTOML_HOME": str(home), **(env or {})})
    t0 = time.perf_counter()
    server.start(timeout=180)
    return server, time.perf_counter() - t0


def rss_mb(pid: int) -> float:
    try:
        return int(re.search(r"VmRSS:\s*(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024
    except (OSError, AttributeError):
        return float("nan")


# ------------------------------------------------------------------------------------------- 3
def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def section_http(url: str, model: Path, quick: bool, model_rate: float) -> str:
    """Each endpoint's rate, and in the same time window (alternating blocks) the in-process rate of section 1's
    ONNX Runtime path at batch 1000, so both see the same noise; plus CPU per 1000 sequences."""
    import httpx

    from serving.encoding import encode
    from serving.predictor import Predictor

    rng = np.random.default_rng(4)
    letters = np.array(list("ACGT"))
    seqs = ["".join(r) for r in letters[rng.integers(0, 4, (1000, 200))]]
    x = encode(seqs, 200)
    buf = io.BytesIO()
    np.save(buf, x.astype(np.uint8), allow_pickle=False)  # as serving/client.py sends it
    npy = buf.getvalue()
    fasta = "".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)).encode()
    client = httpx.Client(timeout=120)
    calls = {
        "/predict, JSON list of 1000 strings": lambda: client.post(f"{url}/predict", json={"sequences": seqs}),
        "/predict_onehot, .npy upload (1000, 200, 4) uint8": lambda: client.post(
            f"{url}/predict_onehot", files={"array": ("x.npy", npy, "application/octet-stream")}),
        "/predict_fasta, FASTA upload of 1000 records": lambda: client.post(
            f"{url}/predict_fasta", files={"fasta": ("x.fa", fasta, "application/octet-stream")}),
    }
    pred = Predictor(model, device="cpu")
    worker = int(client.post(f"{url}/model", json={}).json()["worker_pid"])
    reps, per_rep = (3, 4) if quick else (5, 8)
    ratio = {k: [] for k in calls}
    rate = {k: [] for k in calls}
    cpu = {k: [] for k in calls}
    ref_rates, ref_cpu = [], []
    try:
        for fn in calls.values():
            for _ in range(2):  # warm-up
                fn().raise_for_status()
        for _ in range(reps):
            for name, fn in calls.items():
                c0, t0 = time.process_time(), time.perf_counter()
                for _ in range(per_rep):
                    pred.predict_onehot(x)
                ref = 1000 * per_rep / (time.perf_counter() - t0)
                ref_rates.append(ref)
                ref_cpu.append((time.process_time() - c0) / per_rep)
                s0, c0, t0 = cpu_seconds(worker), time.process_time(), time.perf_counter()
                for _ in range(per_rep):
                    fn().raise_for_status()
                r = 1000 * per_rep / (time.perf_counter() - t0)
                cpu[name].append(((cpu_seconds(worker) - s0) / per_rep, (time.process_time() - c0) / per_rep))
                rate[name].append(r)
                ratio[name].append(r / ref)
    finally:
        client.close()
    med = {k: statistics.median(v) for k, v in ratio.items()}
    rows = []
    for name in calls:
        server_cpu = statistics.median(c[0] for c in cpu[name]) * 1000
        client_cpu = statistics.median(c[1] for c in cpu[name]) * 1000
        rows.append([name, fmt(statistics.median(rate[name])), f"**{med[name]:.0%}**",
                     f"{statistics.median(rate[name]) / model_rate:.0%}", f"{server_cpu:.1f} + {client_cpu:.1f}"])
    rows.append(["in-process `Predictor.predict_onehot`, batch 1000 (the reference, interleaved)",
                 fmt(statistics.median(ref_rates)), "100%", f"{statistics.median(ref_rates) / model_rate:.0%}",
                 f"{statistics.median(ref_cpu) * 1000:.1f}"])
    names = list(calls)
    target("/predict (1000 strings) vs in-process", ">= 70%", 100 * med[names[0]], 70.0, unit="%",
           note="limit: ~4-5 ms per request outside the model (BentoML's request path: body, JSON and pydantic "
                "validation of 1000 strings, middleware, response; plus the client), against ~3.5 ms of model; "
                "see the CPU column and the notes")
    target("/predict_onehot (.npy) vs in-process", ">= 50%", 100 * med[names[1]], 50.0, unit="%",
           note="limit: BentoML's upload path outside the model (the file is spooled to a temporary file for the "
                "`Path` parameter, then np.load + check_onehot, the response; multipart parsing itself is ~0.15 ms) "
                "and 800 kB through loopback per request; see the notes")
    return ("## 3. HTTP: one client, requests one after another, 1000 sequences each (sequences/s, median of "
            f"{reps} blocks of {per_rep} requests)\n\nEach block is timed right after a block of the in-process "
            "reference (ONNX Runtime as the service configures it, batch 1000), so both see the same load; the "
            "ratio is the median of the per-block ratios. CPU columns: CPU milliseconds per request (1000 "
            "sequences) spent by the server's predictor worker + by this benchmark's client.\n\n"
            + table(["endpoint", "sequences/s", "of in-process (interleaved)", "of section 1 (batch 1000)",
                     "CPU ms/request: server + client"], rows))


# ------------------------------------------------------------------------------------------- 4
def scrape_batches(url: str) -> dict[str, float]:
    """bentoml_service_adaptive_batch_size histogram of predict_one: {'sum', 'count', 'le=B': cumulative}."""
    import httpx

    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if not line.startswith("bentoml_service_adaptive_batch_size") or 'method_name="predict_one"' not in line:
            continue
        value = float(line.rsplit(" ", 1)[1])
        if "_sum" in line.split("{")[0]:
            out["sum"] = out.get("sum", 0) + value
        elif "_count" in line.split("{")[0]:
            out["count"] = out.get("count", 0) + value
        elif "_bucket" in line.split("{")[0]:
            le = re.search(r'le="([^"]+)"', line).group(1)
            out[f"le={le}"] = out.get(f"le={le}", 0) + value
    return out


async def _post_loop(host: str, port: int, request: bytes, stop: float, latencies: list, errors: dict) -> None:
    """One keep-alive HTTP/1.1 connection sending `request` (prebuilt bytes) until `stop`: a client that costs
    ~0.05 ms of CPU per request (httpx costs ~0.6 ms), so the benchmark measures the server, not itself."""
    reader = writer = None
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            if status == 200 and body.startswith(b"[{") and body.count(b"probability") == 1:
                latencies.append(time.perf_counter() - t0)
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _clients(url: str, n: int, seconds: float, seqs: list[str]) -> dict:
    """n concurrent clients, each POSTing one sequence per request to /predict_one for `seconds`."""
    host, port = url.split("//")[1].split(":")
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop = time.perf_counter() + seconds
    requests = []
    for i in range(n):
        body = json.dumps({"sequences": [seqs[i % len(seqs)]]}).encode()
        requests.append(f"POST /predict_one HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    t0 = time.perf_counter()
    await asyncio.gather(*(_post_loop(host, int(port), r, stop, latencies, errors) for r in requests))
    return {"ok": len(latencies), "wall": time.perf_counter() - t0, "lat": latencies, "errors": errors}


def predictor_workers(server) -> list[int]:
    """PIDs of the server's `bindcnn` (predictor) worker processes (not the explainer's)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != server.proc.pid:
                continue
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if b"--service-name" in argv and argv[argv.index(b"--service-name") + 1] == b"bindcnn":
            pids.append(int(stat.parent.name))
    return pids


TWO_WORKERS = {"BENTOML_CONFIG_OPTIONS": "services.bindcnn.workers=2", "BINDCNN_THREADS": "1"}


def batching_rows(server, quick: bool, label: str) -> tuple[list[list], dict[int, float], dict]:
    rng = np.random.default_rng(5)
    letters = np.array(list("ACGT"))
    seqs = ["".join(r) for r in letters[rng.integers(0, 4, (512, 200))]]
    seconds = 3.0 if quick else 8.0
    workers = predictor_workers(server)
    rows, rates, errors = [], {}, {"cpu": {}}
    for n in (1, 8, 32):
        asyncio.run(_clients(server.url, n, 0.5, seqs))  # warm-up
        before = scrape_batches(server.url)
        cpu0 = sum(cpu_seconds(w) for w in workers)
        res = asyncio.run(_clients(server.url, n, seconds, seqs))
        server_cpu = (sum(cpu_seconds(w) for w in workers) - cpu0) / max(1, res["ok"]) * 1000
        after = scrape_batches(server.url)
        count = after.get("count", 0) - before.get("count", 0)
        mean_batch = (after.get("sum", 0) - before.get("sum", 0)) / count if count else float("nan")
        buckets = sorted(((float(k[3:]), after[k] - before.get(k, 0)) for k in after if k.startswith("le=")
                          and k != "le=+Inf"))
        p90 = next((b for b, c in buckets if count and c >= 0.9 * count), float("nan"))
        lat = np.array(res["lat"]) * 1000
        rates[n] = res["ok"] / res["wall"]
        errors[n] = res["errors"]
        errors["cpu"][n] = server_cpu
        errs = ", ".join(f"{k}: {v}" for k, v in res["errors"].items()) or "0"
        rows.append([label, n, fmt(rates[n]), f"{rates[n] / rates[1]:.2f}x",
                     f"{np.percentile(lat, 50):.1f}" if len(lat) else "-",
                     f"{np.percentile(lat, 99):.1f}" if len(lat) else "-", f"{mean_batch:.1f}",
                     f"<= {p90:g}", int(count), f"{server_cpu:.2f}", errs])
    return rows, rates, errors


def section_batching(server, model: Path, work: Path, quick: bool) -> str:
    seconds = 3.0 if quick else 8.0
    rows, rates, errors = batching_rows(server, quick, "as shipped: 1 predictor worker, ONNX Runtime on all cores")
    ceiling = (os.cpu_count() or 1) / (errors["cpu"][32] / 1000)
    target("32 concurrent single-sequence clients: errors", "0", float(sum(errors[32].values())), 0.0,
           unit="", lower_is_better=True)
    target("32 concurrent clients vs 1 client (throughput)", ">= 5x", rates[32] / rates[1], 5.0,
           note=f"limit: the server spends ~{errors['cpu'][32]:.1f} ms of Python CPU per request (HTTP, validation, "
                "batching queue, response) whatever the batch, against a few microseconds of model time per "
                f"sequence; {os.cpu_count()} cores / that = a ceiling of ~{ceiling:,.0f} requests/s = "
                f"{ceiling / rates[1]:.1f}x one client, and one worker has one Python thread (2 workers: section 4)"
           if rates[32] / rates[1] < 5 else "")
    say("4b. adaptive batching with 2 predictor workers")
    other, _ = start_server(model, work, TWO_WORKERS)
    try:
        rows2, rates2, _ = batching_rows(other, quick, "2 predictor workers, 1 ONNX Runtime thread each")
    finally:
        other.stop()
    env = " ".join(f"{k}={v}" for k, v in TWO_WORKERS.items())
    return (f"## 4. Adaptive batching: N concurrent clients, one sequence per request to /predict_one, {seconds:g} s "
            "each (a raw keep-alive HTTP/1.1 client, so the client's own CPU stays small)\n\n"
            + table(["server", "clients", "requests/s", "x 1 client", "p50 ms", "p99 ms", "mean batch (/metrics)",
                     "90% of batches", "batches", "server CPU ms/request", "errors"], rows + rows2)
            + f"\n\nThe second configuration is the same service started with `{env}`: each worker has its own "
              "Python thread for the per-request work, so many small clients get "
              f"{rates2[32] / rates[32]:.1f}x the shipped configuration's throughput at 32 clients.")


# ------------------------------------------------------------------------------------------- 5
def section_startup(server, ready_s: float, model: Path) -> str:
    import httpx

    info = httpx.post(f"{server.url}/model", json={}, timeout=60).json()
    pid = int(info["worker_pid"])
    code = ("import time, sys; t0 = time.perf_counter()\n"
            "from serving.predictor import Predictor\n"
            f"p = Predictor({str(model)!r}, device='cpu')\n"
            "import re; rss = int(re.search(r'VmRSS:\\s*(\\d+)', open('/proc/self/status').read()).group(1)) / 1024\n"
            "print(time.perf_counter() - t0, 'tensorflow' in sys.modules, rss)\n")
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
        wall = time.perf_counter() - t0
        inner, tf_loaded, rss = out.stdout.split()
        runs.append((wall, float(inner), tf_loaded == "True", float(rss)))
    wall = statistics.median(r[0] for r in runs)
    rows = [["`bentoml serve` launch -> /readyz 200 (predictor + TensorFlow explainer workers)", f"{ready_s:.1f} s", ""],
            ["predictor worker RSS after the benchmarks", f"{rss_mb(pid):.0f} MB",
             f"TensorFlow loaded in it: {info.get('tensorflow_loaded')}"],
            ["fresh `python` -> `Predictor(model)` ready (imports + session + fingerprint check)",
             f"{wall:.2f} s", f"of which imports+load in-process {statistics.median(r[1] for r in runs):.2f} s; "
                              f"RSS {statistics.median(r[3] for r in runs):.0f} MB; TensorFlow loaded: "
                              f"{any(r[2] for r in runs)}"]]
    target("Predictor ready (fresh process)", "<= 3 s", wall, 3.0, unit=" s", lower_is_better=True)
    ok = not info.get("tensorflow_loaded") and not any(r[2] for r in runs)
    TARGET_ROWS.append(("Predictor worker without TensorFlow", "not loaded", "not loaded" if ok else "LOADED",
                        ok, "met" if ok else "missed"))
    return "## 5. Start-up and memory\n\n" + table(["what", "measured", "notes"], rows)


# ------------------------------------------------------------------------------------------- 6
def section_scanning(model: Path, url: str, work: Path, quick: bool) -> str:
    from benchmarks.bench_scoring import cli, write_inputs  # the scoring benchmark's own helpers
    from serving.encoding import encode_one
    from serving.predictor import Predictor
    from serving.scan import windows

    bp = 100_000 if quick else 300_000
    tmp = work / "scan"
    tmp.mkdir(parents=True, exist_ok=True)
    _, lfa, _, long = write_inputs(tmp, 10, bp)
    pred = Predictor(model, device="cpu")
    view = windows(encode_one(long), pred.length)
    n_win = len(view)

    def in_process() -> None:
        for i in range(0, n_win, 4096):
            pred.predict_onehot(np.ascontiguousarray(view[i:i + 4096]))

    t = []
    for _ in range(3):
        t0 = time.perf_counter()
        in_process()
        t.append(time.perf_counter() - t0)
    ref = n_win / statistics.median(t)
    reps = 1 if quick else 3
    local = statistics.median(cli(["score", str(lfa), "--scan", "--local", "--model", str(model), "--device", "cpu",
                                   "--bedgraph", str(tmp / "l.bedGraph")]) for _ in range(reps))
    api = statistics.median(cli(["score", str(lfa), "--scan", "--url", url, "--bedgraph", str(tmp / "u.bedGraph")])
                            for _ in range(reps))
    rows = [["in-process: Predictor on the windows (no I/O)", fmt(ref), "1.00"],
            ["`python -m serving score --scan --local` -> bedGraph (wall, incl. start-up)", fmt(bp / local),
             f"{bp / local / ref:.2f}"],
            ["`python -m serving score --scan --url` -> bedGraph (through the API)", fmt(bp / api),
             f"{bp / api / ref:.2f}"]]
    return (f"## 6. Scanning a {bp:,} bp sequence at stride 1 (bp/s, median of {reps}; measured with "
            "benchmarks/bench_scoring.py's helpers; its own full table: `python -m benchmarks.bench_scoring`)\n\n"
            + table(["path", "bp/s", "of in-process"], rows))


# ------------------------------------------------------------------------------------------- 7
def section_training(quick: bool) -> str:
    epochs = 3 if quick else 6
    args = ["--epochs", str(epochs)] + (["--limit", "8000"] if quick else [])
    res = subprocess.run([sys.executable, "-m", "benchmarks.bench_training", *args], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"bench_training failed:\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    steady = {k: statistics.median(out[k][1:]) for k in ("notebook", "project", "batch_gather")}
    labels = {"notebook": "notebook-style `model.fit(x, y, batch_size=128, shuffle=True)` on numpy arrays",
              "project": "project `training.train.fit` (tf.data: per-example shuffle, batch, prefetch)",
              "batch_gather": "same fit, proposed input pipeline: shuffled indices batched, one gather per batch "
                              "(benchmarks/bench_training.py `batch_gather_dataset`, not the project's code)"}
    rows = [[labels[k], f"{out[k][0]:.2f}", f"{steady[k]:.2f}", f"{steady[k] / steady['notebook']:.2f}"]
            for k in labels]
    ratio = steady["project"] / steady["notebook"]
    spread = max((max(out[k][1:]) - min(out[k][1:])) / steady[k] for k in ("notebook", "project"))
    target("Training epoch (median of epochs 2+) vs notebook-style fit", "<= 1x", ratio, 1.0, lower_is_better=True,
           note=f"a {ratio - 1:.0%} difference, against an epoch-to-epoch spread of {spread:.0%} in this run"
           if ratio > 1 else "")
    return (f"## 7. Training: seconds per epoch on {out['data']} ({out['train']:,} training, {out['valid']:,} "
            f"validation sequences; same model, Adam, metrics and op determinism; {epochs} epochs each)\n\n"
            + table(["fit", "epoch 1 (s, includes tracing)", f"median of epochs 2-{epochs} (s)", "x notebook"], rows))


# ------------------------------------------------------------------------------------------- 8
def section_gpu(model: Path, work: Path, quick: bool) -> str:
    head = "## 8. GPU (CUDA execution provider)\n\n"
    if not (shutil.which("nvidia-smi") or Path("/dev/nvidia0").exists()):
        return head + "Not measured: this machine has no GPU (no nvidia-smi, no /dev/nvidia0)."
    try:
        res = bi.measure(model, work, ["ort"], rounds=1, reps=2 if quick else 3, device="cuda")
    except RuntimeError as exc:
        return head + f"Not measured: the CUDA run failed: {str(exc)[-500:]}"
    providers = res["info"]["ort"]["providers"]
    if providers[0] != "CUDAExecutionProvider":
        return head + f"Not measured: ONNX Runtime fell back to {providers} (no usable CUDA provider)."
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
    med = res["median"]["ort"]
    return head + f"GPU: {gpu}; session.get_providers() = {providers}\n\n" + table(
        ["engine"] + [f"batch {b}" for b in med], [["ONNX Runtime, CUDA"] + [fmt(v) for v in med.values()]])


# ------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few repetitions and small inputs (for debugging)")
    p.add_argument("--write", type=Path, help="also write the markdown to this file (e.g. benchmarks/RESULTS.md)")
    p.add_argument("--model", type=Path, default=None,
                   help="exported model whose model.keras is re-exported with the current code "
                        "(default: models/ctcf if present, else freshly initialised weights; speed does not "
                        "depend on the weights)")
    p.add_argument("--skip", default="", help=f"comma-separated sections to leave out: {','.join(SECTIONS)}")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench", help="scratch folder (git-ignored)")
    args = p.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(SECTIONS):
        p.error(f"unknown section(s) {sorted(skip - set(SECTIONS))}; choose from {', '.join(SECTIONS)}")

    t_start = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    info = machine()
    source = args.model or (ROOT / "models" / "ctcf" if (ROOT / "models/ctcf/model.keras").exists() else None)
    say(f"exporting the benchmark model ({'from ' + str(source) if source else 'untrained'}) to {work}/models/bench")
    model = bench_model(work, source)
    prep = bi.subprocess_json(["--engine", "prepare", "--model", str(model), "--work", str(work)])
    gflops = bi.subprocess_json(["--engine", "peak", "--model", str(model)])["gflops"]
    parts: list[str] = []
    model_rate = None
    if "inference" not in skip:
        say("1. in-process inference (each engine in its own process)")
        text, res = section_inference(model, work, args.quick, gflops, prep["flops"], info["mhz"])
        parts.append(text)
        model_rate = res["median"]["ort"]["1000"]
    if model_rate is None:  # a quick stand-in when section 1 is skipped
        model_rate = statistics.median(bi.subprocess_json(
            ["--engine", "ort", "--model", str(model), "--batches", "1000", "--reps", "3"])["rates"]["1000"])
    if "encoding" not in skip:
        say("2. encoding")
        parts.append(section_encoding(model, work, args.quick, model_rate))
    server = None
    if {"http", "batching", "startup", "scanning"} - skip:
        say("starting bentoml serve (tests/server.py)")
        server, ready_s = start_server(model, work)
    try:
        if "http" not in skip:
            say("3. HTTP")
            parts.append(section_http(server.url, model, args.quick, model_rate))
        if "batching" not in skip:
            say("4. adaptive batching")
            parts.append(section_batching(server, model, work, args.quick))
        if "startup" not in skip:
            say("5. start-up")
            parts.append(section_startup(server, ready_s, model))
        if "scanning" not in skip:
            say("6. scanning")
            parts.append(section_scanning(model, server.url, work, args.quick))
    finally:
        if server is not None:
            server.stop()
    if "training" not in skip:
        say("7. training")
        parts.append(section_training(args.quick))
    if "gpu" not in skip:
        parts.append(section_gpu(model, work, args.quick))

    load_end = os.getloadavg()
    v = info["versions"]
    header = [
        "# bindcnn benchmarks",
        "",
        f"Generated by `python -m benchmarks{' ' + ' '.join(argv if argv is not None else sys.argv[1:]) if (argv or sys.argv[1:]) else ''}`"
        f" on {dt.datetime.now().astimezone().isoformat(timespec='minutes')} in {time.perf_counter() - t_start:.0f} s"
        f"{' (--quick: few repetitions, small inputs)' if args.quick else ''}.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores{' with AVX-512' if info['avx512'] else ''}, "
        f"{info['mem_gb']} GiB RAM, {info['os']}",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- Model: {prep['parameters']:,} parameters, {prep['flops']['total']:,} FLOP per 200-nt sequence; "
        f"exported by the current training/export.py ({'weights of ' + str(source) if source else 'untrained weights: speed does not depend on them'}).",
        f"- Load average (1 min) at start {info['load'][0]:.1f}, at end {load_end[0]:.1f}: the machine is shared, other "
        "processes may have been running; figures are medians of several runs and the ratios (measured in the same "
        "run) are what to compare.",
        "",
        "## Targets",
        "",
        table(["target", "goal", "measured", "verdict"], [[t, g, m, n] for t, g, m, _, n in TARGET_ROWS]),
    ]
    doc = "\n".join(header) + "\n\n" + "\n\n".join(parts) + "\n\n" + NOTES
    print(doc)
    if args.write:
        args.write.write_text(doc)
        say(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
