"""The model on ONNX Runtime's CUDA execution provider: proof that CUDA really runs it (the session profile names the
provider of every node), the CUDA fingerprint tolerance measured, and throughput against the CPU predictor on one machine.

Needs only numpy, onnxruntime-gpu and onnx (for the float16 graph); `python -m benchmarks.bench_gpu --help`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from serving.artifact import check_fingerprint, probe_inputs, read_metadata, scaled_difference

BATCHES = (1, 64, 1000, 4096, 16384, 65536)
CUDA = "CUDAExecutionProvider"


def nvidia_smi(query: str, what: str = "--query-gpu") -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", f"{what}={query}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"nvidia-smi failed: {exc}"]
    return [line.strip() for line in out.splitlines() if line.strip()]


def float16_graph(src: Path, dst: Path) -> Path:
    """model.onnx with float16 weights, input and outputs (every op of this graph has CUDA float16 kernels)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for value in list(graph.input) + list(graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def session(path: Path, providers: list, profile: str | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if profile:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


def node_providers(sess, x: np.ndarray) -> Counter:
    """Run x twice with profiling on and count (op, provider) over the profile's node events."""
    for _ in range(2):
        sess.run(None, {sess.get_inputs()[0].name: x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    return Counter((e["args"].get("op_name"), e["args"].get("provider")) for e in events
                   if e.get("cat") == "Node" and "provider" in e.get("args", {}))


def rate(fn, n: int, errors: list, min_s: float = 0.4, least: int = 3) -> float:
    """Sequences/s of fn() on n sequences: two warm-up calls, then calls for >= min_s; median per call.
    NaN when fn fails (the error's first line goes to `errors`)."""
    try:
        return _rate(fn, n, min_s, least)
    except Exception as exc:  # a session that cannot run this batch is a finding, not the end of the run
        errors.append(f"batch {n:,}: {str(exc).strip().splitlines()[0][:300]}")
        return float("nan")


def _rate(fn, n: int, min_s: float, least: int) -> float:
    fn()
    fn()
    times, start = [], time.perf_counter()
    while len(times) < least or time.perf_counter() - start < min_s:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def bound_runner(sess, x: np.ndarray):
    """fn() running sess on x kept on the GPU (IO binding: input copied once, outputs left on the device)."""
    import onnxruntime as ort

    binding = None

    def fn():
        nonlocal binding
        if binding is None:  # first (warm-up) call: the copy to the GPU is not timed
            binding = sess.io_binding()
            binding.bind_ortvalue_input(sess.get_inputs()[0].name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0))
            for out in sess.get_outputs():
                binding.bind_output(out.name, "cuda")
        sess.run_with_iobinding(binding)
    return fn


def onehot_batch(n: int, seed: int = 1) -> np.ndarray:
    """(n, 200, 4) float32 one-hot of random ACGT with ~2% N."""
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, 200))]
    x[rng.random((n, 200)) < 0.02] = 0.0
    return x


def measure(model: Path, quick: bool) -> dict:
    import onnxruntime as ort

    from serving.predictor import Predictor
    from serving.tuning import cpu_name

    meta = read_metadata(model)
    res: dict = {"cpu": cpu_name(), "cores": os.cpu_count(), "onnxruntime": ort.__version__,
                 "available_providers": ort.get_available_providers(), "python": platform.python_version(),
                 "gpu": nvidia_smi("name,driver_version,memory.total"), "rows": []}
    t0 = time.perf_counter()
    gpu = Predictor(model, device="cuda")
    res["predictor"] = {"providers": gpu.providers, "device": gpu.device, "ready_s": time.perf_counter() - t0}
    if gpu.device != "cuda":
        res["fallback"] = "the predictor asked for CUDA and ONNX Runtime gave it " + ", ".join(gpu.providers)
        return res
    res["gpu_processes"] = nvidia_smi("pid,used_memory", "--query-compute-apps")
    res["pid"] = os.getpid()
    probe = probe_inputs(200)
    res["fingerprint"] = {"predictor": check_fingerprint(meta, gpu.predict_onehot(probe)["logit"], "cuda", 1.0)}
    cpu = Predictor(model, device="cpu")
    res["cpu_plan"] = cpu.settings.name
    big = onehot_batch(8192 if quick else 32768)
    ref = cpu.predict_onehot(big)["logit"]
    work = Path(tempfile.mkdtemp(prefix="bindcnn-gpu-"))
    fp16 = float16_graph(model / "model.onnx", work / "model.fp16.onnx")
    variants = {
        "fp32 (ORT CUDA defaults)": (model / "model.onnx", [CUDA, "CPUExecutionProvider"], np.float32),
        "fp32, TF32 off": (model / "model.onnx", [(CUDA, {"use_tf32": "0"}), "CPUExecutionProvider"], np.float32),
        "fp32, cuDNN workspace capped": (model / "model.onnx", [(CUDA, {"cudnn_conv_use_max_workspace": "0"}),
                                                                "CPUExecutionProvider"], np.float32),
        "float16 graph": (fp16, [CUDA, "CPUExecutionProvider"], np.float16),
    }
    sessions = {}
    for name, (path, providers, dtype) in variants.items():
        prof = session(path, providers, profile=str(work / name.split()[0]))
        res.setdefault("node_providers", {})[name] = sorted(
            f"{op} on {prov} x{n}" for (op, prov), n in node_providers(prof, big[:4096].astype(dtype)).items())
        sess = sessions[name] = session(path, providers)
        logit = np.concatenate([sess.run(["logit"], {"dna": big[i:i + 4096].astype(dtype)})[0].reshape(-1)
                                for i in range(0, len(big), 4096)]).astype(np.float32)
        res.setdefault("vs_cpu", {})[name] = {
            "n": len(big), "max_scaled_logit_diff": float(scaled_difference(logit, ref).max()),
            "max_abs_prob_diff": float(np.abs(1 / (1 + np.exp(-logit.astype(np.float64)))
                                              - 1 / (1 + np.exp(-ref.astype(np.float64)))).max()),
            "fingerprint": check_fingerprint(
                meta, sess.run(["logit"], {"dna": probe.astype(dtype)})[0].reshape(-1), name, 1.0)}
    for b in BATCHES if not quick else BATCHES[:-1]:
        x = onehot_batch(b, seed=b)
        errors = res.setdefault("errors", [])
        row = {"batch": b,
               "cpu predictor (fixed settings)": rate(lambda: cpu.predict_onehot(x), b, errors),
               "cuda predictor (numpy in/out)": rate(lambda: gpu.predict_onehot(x), b, errors)}
        for name, (path, providers, dtype) in variants.items():
            xd = x.astype(dtype)
            sess = sessions[name]
            row[f"cuda {name}, numpy in/out"] = rate(lambda: sess.run(None, {"dna": xd}), b, errors)
            row[f"cuda {name}, IO binding (input on GPU)"] = rate(bound_runner(sess, xd), b, errors)
        res["rows"].append(row)
        print(f"batch {b}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in row.items() if k != "batch"),
              file=sys.stderr, flush=True)
    return res


def markdown(res: dict) -> str:
    lines = ["# bindcnn on ONNX Runtime's CUDA execution provider", "",
             f"Generated by `python -m benchmarks.bench_gpu` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
             "", f"- GPU: {'; '.join(res['gpu'])}", f"- CPU: {res['cpu']}, {res['cores']} logical cores",
             f"- Python {res['python']}, onnxruntime {res['onnxruntime']} (providers in this build: "
             f"{', '.join(res['available_providers'])})",
             f"- `Predictor(model, device='cuda')`: session.get_providers() = {res['predictor']['providers']}, "
             f"ready in {res['predictor']['ready_s']:.2f} s"]
    if "fallback" in res:
        return "\n".join(lines + ["", f"**No CUDA**: {res['fallback']}."]) + "\n"
    lines += [f"- nvidia-smi compute processes while it held its session (pid, memory): "
              f"{'; '.join(res['gpu_processes']) or 'none listed'} (this process: pid {res['pid']})", "",
              "## Proof: which provider ran each node (ONNX Runtime session profile, batch 4096, two runs)", ""]
    for name, nodes in res["node_providers"].items():
        lines.append(f"- {name}: " + ", ".join(nodes))
    lines += ["", "## Agreement (logits; scaled = |a - b| / max(1, |b|))", "",
              f"Predictor on CUDA vs the SavedModel's fingerprint logits: {res['fingerprint']['predictor']:.3g}.", "",
              "| session | vs fingerprint (16 probes) | vs the CPU predictor: max scaled logit diff | max abs prob diff | n |",
              "| --- | --- | --- | --- | --- |"]
    for name, v in res["vs_cpu"].items():
        lines.append(f"| {name} | {v['fingerprint']:.3g} | {v['max_scaled_logit_diff']:.3g} | "
                     f"{v['max_abs_prob_diff']:.3g} | {v['n']:,} |")
    cols = [k for k in res["rows"][0] if k != "batch"]
    lines += ["", f"## Throughput (sequences/s, median; CPU predictor: {res['cpu_plan']})", "",
              "| batch | " + " | ".join(cols) + " |", "| --- " * (len(cols) + 1) + "|"]
    for row in res["rows"]:
        lines.append(f"| {row['batch']:,} | " + " | ".join("failed" if row[c] != row[c] else f"{row[c]:,.0f}"
                                                          for c in cols) + " |")
    best = {r["batch"]: np.nanmax([v for k, v in r.items() if k.startswith("cuda")])
            / r["cpu predictor (fixed settings)"] for r in res["rows"]}
    lines += ["", "Best CUDA row / CPU predictor: " + ", ".join(f"batch {b:,}: {x:.2f}x" for b, x in best.items()) + "."]
    if res["errors"]:
        lines += ["", "Failed cells (ONNX Runtime's message):", ""] + [f"- {e}" for e in res["errors"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_gpu", description=__doc__)
    ap.add_argument("--model", type=Path, default=Path("models/ctcf"), help="model folder (default models/ctcf)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS-gpu.md"), help="markdown report to write")
    ap.add_argument("--json", type=Path, help="also write the raw figures as JSON")
    ap.add_argument("--quick", action="store_true", help="smaller inputs, no batch 65536")
    args = ap.parse_args(argv)
    res = measure(args.model, args.quick)
    args.out.write_text(markdown(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    print(args.out.read_text())
    return 0 if "fallback" not in res else 1


if __name__ == "__main__":
    sys.exit(main())
