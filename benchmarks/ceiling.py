"""The model against the machine's compute ceiling: the predictor (its fixed settings), ONNX Runtime's default options
and the first landing's fixed options as fractions of the measured matmul ceiling, and where the time goes (an ONNX
Runtime per-op profile of model.onnx on one core, against a one-core matmul), measured in every run."""
from __future__ import annotations

import collections
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import fmt, table, target

CEILING_TARGET = 0.55  # of the measured matmul ceiling, at batch 1000 and 4096 (issue 23)
DEFAULTS_TARGET = 0.95  # predictor / ONNX Runtime's defaults at batch 1000 and 4096 (issue 23)
CEILING_BATCHES = ("1", "1000", "4096")
ROWS = {"ort": "Predictor (fixed settings: the command line's, all cores given)", "ort-default": "ONNX Runtime, "
        "default SessionOptions, one run per batch", "ort-fixed": "first landing's fixed options (no spinning, chunks "
        "of 1024, all cores)"}


def fixed_settings(cores: int):
    """The options serving/predictor.py used before any tuning, as serving.predictor.Settings: one session with
    `cores` intra-op threads that do not spin, runs of 1024."""
    from serving.predictor import Settings

    return Settings(threads=cores, split=False, chunk=1024)


def profile(model_dir: Path, chunk: int, batch: int = 1000, runs: int = 20) -> dict:
    """ONNX Runtime's per-op profile of model.onnx on ONE thread (runs of `chunk`, the predictor's) and a one-thread
    float32 matmul, in this process (run it in a subprocess with OPENBLAS_NUM_THREADS=1): {"ops": [(op, profiled
    ms)], "total_ms" (CPU ms per batch), "matmul_gflops" (on CPU time), "graph", "chunk", "batch"}."""
    import onnxruntime as ort

    from benchmarks.bench_inference import onehot_batch

    x = onehot_batch(batch)
    chunk = min(int(chunk), batch)
    with tempfile.TemporaryDirectory(prefix="bindcnn-profile-") as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        session = ort.InferenceSession(str(model_dir / "model.onnx"), opts,
                                       providers=["CPUExecutionProvider"])
        for _ in range(3):  # warm-up runs are profiled too: dropped below by counting from the end
            session.run(None, {"dna": x[:chunk]})
        t0 = time.process_time()
        for _ in range(runs):
            for i in range(0, batch, chunk):
                session.run(None, {"dna": x[i:i + chunk]})
        cpu = time.process_time() - t0
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: dict[str, float] = collections.defaultdict(float)
    calls = -(-batch // chunk) * runs
    node_events = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_run = len(node_events) // (calls + 3)
    for e in node_events[-calls * per_run:]:
        per_op[e["args"].get("op_name", "?")] += e["dur"] / 1000 / runs
    return {"ops": sorted(per_op.items(), key=lambda kv: -kv[1]), "total_ms": cpu / runs * 1000,
            "matmul_gflops": _one_core_matmul(), "graph": "model.onnx",
            "chunk": chunk, "batch": batch}


def _one_core_matmul(size: int = 2048, reps: int = 5) -> float:
    """GFLOP/s of a float32 matmul on this thread's CPU time (OPENBLAS_NUM_THREADS=1): other processes on the
    machine do not lower it, as they do not lower ONNX Runtime's CPU time above."""
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    a @ a
    best = 0.0
    for _ in range(reps):
        t0 = time.process_time()
        a @ a
        best = max(best, 2 * size**3 / max(time.process_time() - t0, 1e-9) / 1e9)
    return best


def profile_text(prof: dict, flops: dict, filters_executed: int) -> tuple[str, float]:
    """Markdown for the profile and the share of the one-core matmul rate the Conv reaches on the FLOPs it runs."""
    total = sum(ms for _, ms in prof["ops"])  # profiled durations: their shares, times the CPU time measured
    conv_ms = sum(ms for op, ms in prof["ops"] if op.startswith("Conv")) / total * prof["total_ms"]
    conv_flop = prof["batch"] * flops.get("conv", 0) * filters_executed / max(1, flops.get("filters", 1))
    conv_gflops = conv_flop / (conv_ms / 1000) / 1e9 if conv_ms else 0.0
    rows = [[op, f"{ms / total * prof['total_ms']:.2f}", f"{ms / total:.0%}"] for op, ms in prof["ops"][:6]]
    seq_rate = prof["batch"] / (prof["total_ms"] / 1000)
    one_core_ceiling = prof["matmul_gflops"] * 1e9 / flops["total"]
    text = (f"Where the time goes (ONNX Runtime profile of `{prof['graph']}` on one thread, batch {prof['batch']} in "
            f"runs of {prof['chunk']}; CPU time {prof['total_ms']:.1f} ms per batch, split by the profile's shares = "
            f"{fmt(seq_rate)} sequences/s on one core, {seq_rate / one_core_ceiling:.0%} of the one-core ceiling from a one-thread matmul of "
            f"{prof['matmul_gflops']:.0f} GFLOP/s):\n\n" + table(["op", "ms per batch", "share"], rows)
            + f"\n\nThe Conv computes {filters_executed} filters ({flops.get('filters', '?')} real): "
              f"{conv_gflops:.0f} GFLOP/s on the FLOPs it runs, **{conv_gflops / prof['matmul_gflops']:.0%}** of "
              f"the one-thread matmul. At that efficiency the nominal ceiling allows at most "
              f"{conv_gflops / prof['matmul_gflops'] * flops.get('filters', 1) / filters_executed:.0%} of it for "
              "the conv alone (the padded filters are work the ceiling does not count).")
    return text, conv_gflops / prof["matmul_gflops"]


def section_ceiling(med: dict, info: dict, gflops: float, settings: dict, prof: dict, flops: dict,
                    filters_executed: int) -> str:
    """Section 1b: fractions of the ceiling for ROWS at CEILING_BATCHES, the targets, the predictor's settings.
    Each row's ceiling is the matmul measured in the same processes right before its timings (info[e]
    "gflops_runs", median), so a load that changes during the run falls on both; else the run's `gflops`."""
    ceilings = {e: statistics.median(info.get(e, {}).get("gflops_runs") or [gflops]) * 1e9 / flops["total"]
                for e in ROWS}
    rows = [[ROWS[e], fmt(ceilings[e])] + [f"{fmt(med[e][b])} ({med[e][b] / ceilings[e]:.0%})"
                                          for b in CEILING_BATCHES] for e in ROWS if e in med]
    ceiling = ceilings["ort"]
    rows.append(["**Predictor / ORT defaults**", ""] + [f"**{med['ort'][b] / med['ort-default'][b]:.2f}x**"
                                                      for b in CEILING_BATCHES])
    prof_text, conv_eff = profile_text(prof, flops, filters_executed)
    for b in ("1000", "4096"):
        share = med["ort"][b] / ceiling
        target(f"Predictor at batch {b} vs the measured matmul ceiling", f">= {CEILING_TARGET:.0%}", 100 * share,
               100 * CEILING_TARGET, unit="%",
               note="" if share >= CEILING_TARGET else
               f"{CEILING_TARGET / share:.2f}x short; the one-core profile (section 1b) puts the Conv at "
               f"{conv_eff:.0%} of a one-thread matmul on the {filters_executed} filters it computes "
               f"({flops.get('filters', '?')} real)")
    for b in ("1000", "4096"):
        target(f"Predictor vs ONNX Runtime defaults at batch {b}", f">= {DEFAULTS_TARGET:.2f}x",
               med["ort"][b] / med["ort-default"][b], DEFAULTS_TARGET)
    return ("### 1b. Against the compute ceiling (sequences/s and share of the ceiling, median)\n\n"
            f"Ceiling = a numpy float32 matmul on all cores (GFLOP/s) / {flops['total']:,} FLOP per sequence, "
            f"measured in each engine's process right before its timings (median over its processes; section 1's "
            f"single measurement: {gflops:,.0f} GFLOP/s), so that a load changing during the run affects both.\n\n"
            + table(["configuration", "ceiling (seq/s)"] + [f"batch {b}" for b in CEILING_BATCHES], rows)
            + f"\n\nThe predictor's settings: **{settings.get('name', '?')}** ({settings.get('source', '?')}; "
              "serving/predictor.py, docs/performance.md \"ONNX Runtime settings\"; nothing is timed at start)."
              "\n\n" + prof_text)


def profile_env() -> dict:
    """Environment of the profiling subprocess: one BLAS thread, so its matmul is a one-core figure."""
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def executed_filters(model_dir: Path, graph_file: str) -> int:
    """Output channels of the first Conv in an ONNX file (the filters it computes, padding included); 0 when it
    cannot be read (not this project's graph, or the onnx package missing)."""
    try:
        import onnx

        proto = onnx.load(str(model_dir / graph_file), load_external_data=False)
        conv = next(n for n in proto.graph.node if n.op_type == "Conv")
        return int(next(i for i in proto.graph.initializer if i.name == conv.input[1]).dims[0])
    except Exception:
        return 0
