"""Sections 3 and 5 of the suite, the served model one request at a time: each endpoint's rate beside the
in-process model in the same time window (with CPU per request), and start-up time and memory."""
from __future__ import annotations

import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT, TARGET_ROWS, band, fmt, table, target
from benchmarks.server import cpu_seconds, rss_mb

# /predict's rate as a share of in-process: the words section 3 uses.
HTTP_BANDS = [(0.7, "HTTP adds little to the model's time"), (0.4, "HTTP costs a large share of the time")]
HTTP_BELOW = "HTTP costs most of the time"
HTTP_RULE = ">= 70%: little; 40-70%: a large share; < 40%: most"


def cpu_note(server_ms: float, client_ms: float, model_ms: float, extra: str = "") -> str:
    """Where a request's CPU went, from this run's CPU columns."""
    outside = server_ms + client_ms - model_ms
    return (f"per request (1000 sequences) the server's worker used {server_ms:.1f} ms of CPU and this client "
            f"{client_ms:.1f} ms, against {model_ms:.1f} ms for the model in-process: ~{outside:.1f} ms outside "
            f"the model{extra}; see the CPU column and the notes")


def section_http(url: str, model: Path, quick: bool, model_rate: float) -> str:
    """Each endpoint's rate, and in the same time window (alternating blocks) the in-process rate of section 1's
    ONNX Runtime path at batch 1000, so both see the same noise; plus CPU per 1000 sequences."""
    import httpx

    from serving.dna import encode, encode_codes, random_dna
    from serving.predictor import Predictor

    seqs = random_dna(1000, 200, seed=4)
    x = encode(seqs, 200)
    codes = encode_codes(seqs, 200).tobytes()  # as serving/client.py sends them
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
        "/predict_codes, 1000 x 200 code bytes (multipart)": lambda: client.post(
            f"{url}/predict_codes", files={"codes": ("x.bin", codes, "application/octet-stream")}),
        "/raw/predict_codes, the same bytes as the body (octet-stream)": lambda: client.post(
            f"{url}/raw/predict_codes", content=codes, headers={"content-type": "application/octet-stream"}),
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
    model_ms = statistics.median(ref_cpu) * 1000
    rows, cpu_ms = [], {}
    for name in calls:
        cpu_ms[name] = (statistics.median(c[0] for c in cpu[name]) * 1000,
                        statistics.median(c[1] for c in cpu[name]) * 1000)
        rows.append([name, fmt(statistics.median(rate[name])), f"**{med[name]:.0%}**",
                     f"{statistics.median(rate[name]) / model_rate:.0%}",
                     f"{cpu_ms[name][0]:.1f} + {cpu_ms[name][1]:.1f}"])
    rows.append(["in-process `Predictor.predict_onehot`, batch 1000 (the reference, interleaved)",
                 fmt(statistics.median(ref_rates)), "100%", f"{statistics.median(ref_rates) / model_rate:.0%}",
                 f"{model_ms:.1f}"])
    strings = list(calls)[0]
    # One request at a time keeps one predictor worker (one core, serving/service/workers.py) busy: the targets for
    # HTTP batch scoring are measured with requests in flight (section 3b); this table says where a request's CPU goes.
    return ("## 3. HTTP: one client, requests one after another, 1000 sequences each (sequences/s, median of "
            f"{reps} blocks of {per_rep} requests)\n\nEach block is timed right after a block of the in-process "
            "reference (ONNX Runtime as the service configures it, batch 1000), so both see the same load; the "
            "ratio is the median of the per-block ratios. CPU columns: CPU milliseconds per request (1000 "
            "sequences) spent by the server's predictor worker + by this benchmark's client.\n\n"
            + table(["endpoint", "sequences/s", "of in-process (interleaved)", "of section 1 (batch 1000)",
                     "CPU ms/request: server + client"], rows)
            + f"\n\n/predict reached {med[strings]:.0%} of the in-process rate one request at a time: "
              f"{band(med[strings], HTTP_BANDS, HTTP_BELOW)} ({HTTP_RULE}); "
              + cpu_note(*cpu_ms[strings], model_ms) + ".")


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
