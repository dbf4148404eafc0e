"""Sections 6-8 of the suite, the longer workloads: scanning a long sequence (in-process, CLI, through the API),
seconds per training epoch against a notebook-style fit, and ONNX Runtime on CUDA where a GPU exists."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT, fmt, table, target


def section_scanning(model: Path, url: str, work: Path, quick: bool) -> str:
    from benchmarks.bench_scoring import cli, write_inputs  # the scoring benchmark's own helpers
    from serving.dna import encode_one
    from serving.predictor import Predictor
    from serving.scoring.scan import windows

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
    local = statistics.median(cli(["scan", str(lfa), "--local", "--model", str(model), "--device", "cpu",
                                   "--bedgraph", str(tmp / "l.bedGraph")]) for _ in range(reps))
    api = statistics.median(cli(["scan", str(lfa), "--url", url, "--bedgraph", str(tmp / "u.bedGraph")])
                            for _ in range(reps))
    rows = [["in-process: Predictor on the windows (no I/O)", fmt(ref), "1.00"],
            ["`python -m serving scan --local` -> bedGraph (wall, incl. start-up)", fmt(bp / local),
             f"{bp / local / ref:.2f}"],
            ["`python -m serving scan --url` -> bedGraph (through the API)", fmt(bp / api),
             f"{bp / api / ref:.2f}"]]
    return (f"## 6. Scanning a {bp:,} bp sequence at stride 1 (bp/s, median of {reps}; measured with "
            "benchmarks/bench_scoring.py's helpers; its own full table: `python -m benchmarks.bench_scoring`)\n\n"
            + table(["path", "bp/s", "of in-process"], rows))


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
              "project": "project `training.fit.fit` (tf.data: per-example shuffle, batch, prefetch)",
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


def section_gpu(model: Path, work: Path, quick: bool) -> str:
    """Section 8: benchmarks/bench_gpu.py's report where this machine has an NVIDIA GPU, else where to find one."""
    from benchmarks import bench_gpu

    head = "## 8. GPU (CUDA execution provider)\n\n"
    if not (shutil.which("nvidia-smi") or Path("/dev/nvidia0").exists()):
        last = ROOT / "benchmarks" / "RESULTS-gpu.md"
        where = f" The last GPU run is in benchmarks/RESULTS-gpu.md ({_first_line_with(last, '- GPU:')})." \
            if last.is_file() else ""
        return head + "Not measured: this machine has no GPU (no nvidia-smi, no /dev/nvidia0)." + where
    res = bench_gpu.measure(model, quick)
    body = bench_gpu.markdown(res).split("\n", 2)[2]  # without its title line
    return head + body.replace("\n## ", "\n### 8. ")


def _first_line_with(path: Path, prefix: str) -> str:
    return next((line[len(prefix):].strip() for line in path.read_text().splitlines() if line.startswith(prefix)),
                "")