"""In-process model throughput (sequences/s at several batch sizes) of ONNX Runtime as the service configures
it, against TensorFlow (reloaded SavedModel through a tf.function) and Keras `model.predict`; plus peak FLOP/s.

Each engine runs in its own process (`python -m benchmarks.bench_inference --engine NAME`, prints JSON), so
TensorFlow's thread pools never share a process with ONNX Runtime; `measure()` alternates them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from training.onnx_graph import CHANNEL_BLOCK

BATCHES = (1, 64, 1000, 4096)
ENGINES = {
    "ort": "ONNX Runtime, the predictor's fixed settings (serving.predictor.Predictor)",
    "ort-default": "ONNX Runtime, default SessionOptions, same model.onnx",
    "ort-fixed": "ONNX Runtime, the first landing's fixed options (no spinning, chunks of 1024)",
    "ort-tf2onnx": "ONNX Runtime, default SessionOptions, tf2onnx's graph of the same weights (before tuning)",
    "tf": "TensorFlow, reloaded SavedModel `serve` through tf.function",
    "keras": "Keras `model.predict` (model.keras)",
}


def onehot_batch(n: int, length: int = 200, seed: int = 0) -> np.ndarray:
    """(n, length, 4) float32 random one-hot DNA: serving.dna.random_dna's strings, encoded."""
    from serving.dna import encode, random_dna

    return encode(random_dna(n, length, seed), length)


def rate(fn, n: int, reps: int, seconds: float) -> list[float]:
    """Sequences/s of fn() (n sequences per call): `reps` timed windows of >= `seconds` each, after one warm-up."""
    fn()
    out = []
    for _ in range(reps):
        calls, t0 = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            dt = time.perf_counter() - t0
            if dt >= seconds:
                break
        out.append(n * calls / dt)
    return out


def peak_gflops(sizes=(2048, 3072), reps: int = 4) -> float:
    """Measured float32 matmul GFLOP/s (numpy's BLAS, all cores): the best of `reps` products per size."""
    best = 0.0
    for size in sizes:
        a = np.random.default_rng(0).random((size, size), dtype=np.float32)
        b = np.random.default_rng(1).random((size, size), dtype=np.float32)
        a @ b
        for _ in range(reps):
            t0 = time.perf_counter()
            a @ b
            best = max(best, 2 * size**3 / (time.perf_counter() - t0) / 1e9)
    return best


def _engine_fn(engine: str, model_dir: Path, work: Path, device: str):
    """(function x -> outputs, info) for one engine; TensorFlow is imported only by tf/keras/prepare."""
    if engine.startswith("ort"):
        import onnxruntime as ort

        from serving.predictor import Predictor, choose_providers, cores_given

        if engine in ("ort", "ort-fixed"):
            from benchmarks.ceiling import fixed_settings

            settings = fixed_settings(cores_given()) if engine == "ort-fixed" else None
            p = Predictor(model_dir, device=device, settings=settings)
            return (lambda x: p.predict_onehot(x)), {"providers": p.providers, "settings": p.describe()["settings"]}
        graph = model_dir / "model.onnx" if engine == "ort-default" else work / "tf2onnx.onnx"
        s = ort.InferenceSession(str(graph), providers=choose_providers(device))
        return (lambda x: s.run(["prob", "logit"], {"dna": x})), {"providers": s.get_providers()}
    from serving.attribution import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    if engine == "tf":
        m = tf.saved_model.load(str(model_dir / "saved_model"))
        serve = tf.function(lambda x: m.serve(x))
        return (lambda x: serve(tf.constant(x)).numpy()), {"tensorflow": tf.__version__}
    import keras

    model = keras.models.load_model(model_dir / "model.keras")
    return (lambda x: model.predict(x, batch_size=len(x), verbose=0)), {"keras": keras.__version__}


def prepare(model_dir: Path, work: Path) -> dict:
    """Write work/tf2onnx.onnx (tf2onnx's graph of model.keras) and count the model's FLOPs per sequence."""
    from serving.attribution import quiet_tensorflow

    quiet_tensorflow()
    import keras

    from training.export import _tf2onnx_graph

    model = keras.models.load_model(model_dir / "model.keras")
    work.mkdir(parents=True, exist_ok=True)
    (work / "tf2onnx.onnx").write_bytes(_tf2onnx_graph(model, 17).SerializeToString())
    return {"flops": flops_per_sequence(model), "parameters": int(model.count_params())}


def flops_per_sequence(model) -> dict:
    """FLOP (multiply-adds x 2) per sequence of each Conv1D ('same', stride 1) and Dense layer of a Keras model;
    'total', and 'executed' = what ONNX Runtime computes with training.onnx_graph's filters padded to whole blocks
    ('filters' -> 'padded_filters' of the first Conv1D).
    For the notebook CNN: conv 200*19*4*24*2 = 729,600; dense 192*64*2 = 24,576; logit 64*2 = 128."""
    out, padding, filters = {}, 0, []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv1D":
            k, c, f = layer.get_weights()[0].shape
            out[layer.name] = int(layer.output.shape[1]) * k * c * f * 2
            padding += out[layer.name] * (-(-f // CHANNEL_BLOCK) * CHANNEL_BLOCK - f) // f
            filters.append(int(f))
        elif kind == "Dense":
            i, o = layer.get_weights()[0].shape
            out[layer.name] = i * o * 2
    out["total"] = sum(out.values())
    out["executed"] = out["total"] + padding
    if filters:
        out["filters"], out["padded_filters"] = filters[0], -(-filters[0] // CHANNEL_BLOCK) * CHANNEL_BLOCK
    return out


def run_engine(engine: str, model_dir: Path, work: Path, batches, reps: int, seconds: float, device: str) -> dict:
    fn, info = _engine_fn(engine, model_dir, work, device)
    x = onehot_batch(max(batches))
    out = {"engine": engine, "info": info, "rates": {}}
    if engine.startswith("ort"):  # the ceiling in this process, right before: the same load as the timings
        info["gflops"] = peak_gflops(sizes=(2048,), reps=3)
    for n in batches:
        xb = np.ascontiguousarray(x[:n])
        out["rates"][str(n)] = rate(lambda: fn(xb), n, reps, seconds)
    return out


def subprocess_json(args: list[str], env: dict | None = None, timeout: float = 900) -> dict:
    """Run `python -m benchmarks.bench_inference ARGS` and return its JSON (last stdout line)."""
    res = subprocess.run([sys.executable, "-m", "benchmarks.bench_inference", *args], capture_output=True,
                         text=True, timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})
    if res.returncode != 0:
        raise RuntimeError(f"bench_inference {' '.join(args)} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure(model_dir: Path, work: Path, engines, batches=BATCHES, rounds: int = 2, reps: int = 3,
            seconds: float = 0.3, device: str = "cpu") -> dict:
    """{engine: {batch: median seq/s}, ...}: each engine in its own process, `rounds` times in alternation
    (ort, tf, keras, ort, tf, keras, ...) so that noise from other processes falls on all of them alike."""
    samples: dict[str, dict[str, list[float]]] = {e: {str(n): [] for n in batches} for e in engines}
    info = {}
    for _ in range(rounds):
        for engine in engines:
            # Keras predict at batch 1 is ~50 ms a call: fewer seconds there keep the suite short.
            res = subprocess_json(["--engine", engine, "--model", str(model_dir), "--work", str(work),
                                   "--batches", ",".join(map(str, batches)), "--reps", str(reps),
                                   "--seconds", str(seconds), "--device", device])
            for key, value in res["info"].items():  # the first process's
                info.setdefault(engine, {}).setdefault(key, value)
            if "gflops" in res["info"]:
                info[engine].setdefault("gflops_runs", []).append(res["info"]["gflops"])
            for n, values in res["rates"].items():
                samples[engine][n].extend(values)
    return {"median": {e: {n: statistics.median(v) for n, v in s.items()} for e, s in samples.items()},
            "samples": samples, "info": info}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_inference", description=__doc__)
    p.add_argument("--engine", choices=[*ENGINES, "prepare", "peak", "profile"], required=True,
                   help="which engine to time in this process (prints JSON)")
    p.add_argument("--model", type=Path, required=True, help="exported model folder (models/<name>)")
    p.add_argument("--work", type=Path, default=Path("runs/bench"), help="scratch folder (tf2onnx graph)")
    p.add_argument("--batches", default=",".join(map(str, BATCHES)), help="batch sizes, comma-separated")
    p.add_argument("--reps", type=int, default=3, help="timed windows per batch size (median reported)")
    p.add_argument("--seconds", type=float, default=0.3, help="minimum length of one timed window")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="ONNX Runtime device")
    p.add_argument("--chunk", type=int, default=128, help="profile: sequences per run (the predictor's)")
    args = p.parse_args(argv)
    if args.engine == "prepare":
        out = prepare(args.model, args.work)
    elif args.engine == "profile":
        from benchmarks.ceiling import profile

        out = profile(args.model, args.chunk)
    elif args.engine == "peak":
        out = {"gflops": peak_gflops()}
    else:
        out = run_engine(args.engine, args.model, args.work, [int(b) for b in args.batches.split(",")],
                         args.reps, args.seconds, args.device)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
