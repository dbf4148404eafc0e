"""Which ONNX graph, session options and chunking run the model fastest on this CPU: at first start every candidate
is checked for parity, then timed briefly; the choice is cached per CPU model, ONNX Runtime version and model files.

Candidates (serving/runner.py Plan): model.onnx with ONNX Runtime's default SessionOptions (the floor, so the
predictor is never slower than defaults), and every graph (model.onnx + metadata's onnx_variants) x tuned options x
chunk sizes x intra-op threads or Python threads. Cache handling: serving/calibration_cache.py.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from serving import calibration_cache as cache
from serving.artifact import ONNX_FILE, check_fingerprint, probe_inputs, scaled_difference
from serving.runner import SMALL_BATCH, Plan, Runner

log = logging.getLogger("bindcnn.calibration")

PARITY_TOLERANCE = 1e-5  # a candidate's logits vs model.onnx (ONNX Runtime defaults) and vs TensorFlow's
# Timed calls are RUNS runs of BATCH sequences, the size of a /predict request (score --url sends 1000). Measured on
# the 2-core EPYC: parallel chunk 256 ran 3-7% slower than chunk 128 at batch 1000, yet timing at batch 2048 chose it;
# with 2 runs per call, 4 calibrations in a row chose 3 different plans, with 4 runs 5 of 5 chose the same.
BATCH = 1000
RUNS = 4
KEEP = 3  # candidates (besides the baseline) timed again in the second round
ROUNDS = 5  # paired rounds of the finalists with the baseline
MARGIN = 1.03  # median speed-up over ONNX Runtime's defaults a plan needs to be chosen (noise on a shared machine)
# After a run, ONNX Runtime's spinning pool threads (its default) hold the cores for tens of ms: measured here, the
# next run of another session at half speed 10 ms later, at full speed 50 ms later. Timings wait that out.
SPIN_SETTLE_S = 0.06
BASELINE = Plan()  # model.onnx, ONNX Runtime's default SessionOptions, one run per <= 4096 sequences
Timer = Callable[[Plan, Callable[[], Any]], float]  # (plan, call) -> seconds of one call


def physical_cores() -> int:
    """Cores (not hyper-threads) among the CPUs this process may run on: ONNX Runtime's default thread count."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        try:
            top = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
            cores.add(((top / "physical_package_id").read_text().strip(), (top / "core_id").read_text().strip()))
        except OSError:
            cores.add(("", str(cpu)))
    return max(1, len(cores))


def requested_threads(threads: int | None = None) -> int:
    """Threads the predictor may use: the argument, else BINDCNN_THREADS, else 0 (all physical cores)."""
    return int(threads or os.environ.get("BINDCNN_THREADS") or 0)


def candidates(metadata: dict[str, Any], threads: int) -> list[Plan]:
    """The plans to compare; threads: 0 = all physical cores. BASELINE comes first."""
    cores = threads or physical_cores()
    graphs = [("model.onnx", ONNX_FILE)] + [(name, v["file"]) for name, v in
                                            sorted((metadata.get("onnx_variants") or {}).items())]
    out = [BASELINE.with_(threads=threads)]
    for graph, file in graphs:
        base = Plan(graph=graph, file=file, threads=cores, small="single")
        if cores == 1:
            out += [base.with_(options="nospin", chunk=c) for c in (128, 256, 1024)]
            continue
        # Python threads: runs of 128 or 192. On the 2-core EPYC, runs of 256 were 3-7% slower than the better of
        # those at batch 1000 and 1-3% at 4096 (python -m benchmarks.plans, 4 times), yet won calibrations by noise.
        out += [base.with_(options="spin", chunk=256), base.with_(options="nospin", chunk=256),
                base.with_(options="nospin", parallel=True, chunk=128),
                base.with_(options="nospin", parallel=True, chunk=192)]
    return out


def parity_inputs(length: int, n: int = 128) -> np.ndarray:
    """(n, length, 4) float32: serving.artifact.probe_inputs (the fingerprint's 16 first) plus seeded random
    one-hot rows with ~2% N positions."""
    x = probe_inputs(length, n)
    first = probe_inputs(length)[:n]
    x[:len(first)] = first
    return x


def parity(runner: Runner, x: np.ndarray, reference: np.ndarray, fingerprint: np.ndarray, ref_tf: float
           ) -> dict[str, float]:
    """Largest scaled logit differences of a runner's output on x against the reference (model.onnx with default
    options) and, on the first 16 rows, against the SavedModel logits recorded at export."""
    _, logit = runner.run(x)
    _, logit_small = runner.run(x[:SMALL_BATCH])
    logit = np.concatenate([logit_small, logit[SMALL_BATCH:]])
    return {"vs_onnx": float(np.nan_to_num(scaled_difference(logit, reference), nan=np.inf).max()),
            "vs_tensorflow": float(np.nan_to_num(scaled_difference(logit[:len(fingerprint)], fingerprint),
                                                 nan=np.inf).max()),
            "tolerance": PARITY_TOLERANCE, "tensorflow_tolerance": max(PARITY_TOLERANCE, ref_tf)}


def passes(diffs: dict[str, float]) -> bool:
    return diffs["vs_onnx"] <= diffs["tolerance"] and diffs["vs_tensorflow"] <= diffs["tensorflow_tolerance"]


def wall_timer(plan: Plan, call: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def calibrate(model_dir: str | os.PathLike, metadata: dict[str, Any], threads: int = 0,
              timer: Timer = wall_timer, plans: list[Plan] | None = None) -> dict[str, Any]:
    """Check every candidate for parity, time the ones that pass (calls of RUNS x BATCH: all screened, the KEEP
    fastest then paired with the baseline, _choose) and return the record the cache keeps: {"plan", "measured"
    (best seq/s per plan name), "gain_vs_default" (median speed-up of the finalists), "rejected" (plan name ->
    why), "parity", "seconds"}."""
    model_dir = Path(model_dir)
    t_start = time.perf_counter()
    length, name = metadata["sequence_length"], metadata["input_name"]
    x_par = parity_inputs(length)
    ref = Runner(model_dir, BASELINE, name)
    reference = ref.run(x_par)[1]
    fingerprint = np.asarray(metadata["fingerprint"]["logit"], np.float64)
    ref_tf = check_fingerprint(metadata, reference[:len(fingerprint)], "the ONNX model (model.onnx)")
    x = probe_inputs(length, BATCH * RUNS).reshape(RUNS, BATCH, length, 4)
    runners, measured, rejected, diffs = {}, {}, {}, {}
    for plan in plans or candidates(metadata, threads):
        try:
            runner = Runner(model_dir, plan, name)
            diffs[plan.name] = parity(runner, x_par, reference, fingerprint, ref_tf)
        except Exception as exc:  # a variant ONNX Runtime cannot load here is not a candidate
            rejected[plan.name] = f"did not load or run: {exc}"[:300]
            continue
        if not passes(diffs[plan.name]):
            rejected[plan.name] = (f"parity: {diffs[plan.name]['vs_onnx']:.2g} vs model.onnx, "
                                   f"{diffs[plan.name]['vs_tensorflow']:.2g} vs TensorFlow")
            runner.close()
            continue
        runners[plan] = runner
    if not runners:  # cannot happen for the baseline unless model.onnx itself is broken
        raise RuntimeError(f"no ONNX Runtime configuration of {model_dir} passed the parity check: {rejected}")
    base = BASELINE.with_(threads=threads) if BASELINE.with_(threads=threads) in runners else next(iter(runners))
    main, measured, gains = _choose(runners, base, x, timer)
    chosen = main.with_(small=_small_path(runners, main, base, x[0, :1], timer))
    for runner in runners.values():
        runner.close()
    return {"plan": chosen.as_dict(), "measured": measured, "gain_vs_default": gains, "rejected": rejected,
            "parity": {k: v for k, v in diffs.items() if k in {main.name, base.name}},
            "seconds": round(time.perf_counter() - t_start, 2)}


def _spins(plan: Plan) -> bool:
    """Whether plan's session has pool threads that spin when idle (ONNX Runtime's default, and "spin")."""
    return plan.options in ("ort-default", "spin") and not plan.parallel and plan.threads != 1


def _measure(timer: Callable[[Any, Callable], float], key: Any, call: Callable[[], Any], spins: bool) -> float:
    """The faster of two timed calls in a row; then, when key's threads spin, SPIN_SETTLE_S of rest."""
    took = min(timer(key, call), timer(key, call))
    if spins:
        time.sleep(SPIN_SETTLE_S)
    return took


def _paired(options: dict[Any, Callable[[], Any]], base: Any, rounds: int, timer: Callable[[Any, Callable], float],
            spins: Callable[[Any], bool]) -> tuple[dict[Any, float], dict[Any, float]]:
    """Measure every option per round (_measure), the order rotated each round; returns (best seconds per option,
    median over rounds of base's time / the option's time), so a load that drifts falls on both sides of each
    ratio."""
    keys = list(options)
    best: dict[Any, float] = {}
    ratios: dict[Any, list[float]] = {k: [] for k in keys}
    for r in range(rounds):
        took = {k: _measure(timer, k, options[k], spins(k)) for k in keys[r % len(keys):] + keys[:r % len(keys)]}
        for k in keys:
            best[k] = min(best.get(k, np.inf), took[k])
            ratios[k].append(took[base] / max(took[k], 1e-12))
    return best, {k: float(np.median(v)) for k, v in ratios.items()}


def _choose(runners: dict[Plan, Runner], base: Plan, x: np.ndarray, timer: Timer
            ) -> tuple[Plan, dict[str, int | None], dict[str, float]]:
    """x: (RUNS, BATCH, L, 4) float32, one timed call runs each batch. Screen every plan (_measure), then time the
    KEEP fastest paired with the baseline over ROUNDS rounds; a plan replaces the baseline only when its median gain
    is >= MARGIN."""
    calls = {p: (lambda r=runners[p]: [r.run(batch) for batch in x]) for p in runners}
    for call in calls.values():
        call()  # warm-up: the memory arena and the thread pool
    time.sleep(SPIN_SETTLE_S)
    screen = {p: _measure(timer, p, calls[p], _spins(p)) for p in runners}
    finalists = [p for p in sorted(screen, key=screen.get) if p != base][:KEEP]
    best, gain = _paired({p: calls[p] for p in [base, *finalists]}, base, ROUNDS, timer, _spins)
    measured = {p.name: round(BATCH * RUNS / min(screen[p], best.get(p, np.inf))) for p in runners}
    top = max(finalists, key=gain.get, default=base)
    main = top if gain.get(top, 0.0) >= MARGIN else base
    return main, measured, {p.name: round(gain[p], 3) for p in finalists}


def _small_path(runners: dict[Plan, Runner], main: Plan, baseline: Plan, x1: np.ndarray, timer: Timer) -> str:
    """The session for batches <= SMALL_BATCH: "single", "main" or "ort-default", timed at batch 1 (50 calls per
    measurement, 3 paired rounds as _choose, the same MARGIN over ONNX Runtime's defaults)."""
    sessions = {"ort-default": runners[baseline].session, "main": runners[main].session}
    single = next((r.small_session for p, r in runners.items() if p.graph == main.graph and
                   r.small_session is not r.session), None)
    if single is not None:
        sessions["single"] = single
    name = runners[main].input_name

    def calls(session):
        def run():
            for _ in range(50):
                session.run(["prob", "logit"], {name: x1})
        return run

    spinning = {"ort-default": _spins(baseline), "main": _spins(main), "single": False}
    _, gain = _paired({k: calls(s) for k, s in sessions.items()}, "ort-default", 3,
                      lambda key, call: timer(main.with_(small=key), call), spinning.get)
    top = max((k for k in sessions if k != "ort-default"), key=gain.get)
    return top if gain[top] >= MARGIN else "ort-default"


def plan_for(model_dir: str | os.PathLike, metadata: dict[str, Any], threads: int | None = None,
             mode: str | None = None, timer: Timer = wall_timer) -> tuple[Plan, dict[str, Any]]:
    """The Plan for this machine and the record behind it (+ "source": cache, calibrated or off; "path").

    mode (default BINDCNN_CALIBRATE): "auto" (the cached choice, else calibrate and cache it), "force"
    (calibrate again), "off" (ONNX Runtime's defaults, nothing timed). Concurrent starts (several service
    workers) wait for the first one's calibration instead of timing against each other."""
    mode = (mode or os.environ.get("BINDCNN_CALIBRATE") or "auto").lower()
    threads = requested_threads(threads)
    if mode in ("off", "0", "no", "false"):
        return BASELINE.with_(threads=threads), {"source": "off", "plan": BASELINE.with_(threads=threads).as_dict()}
    key = cache.cache_key(model_dir, metadata, threads)
    path = cache.cache_path(model_dir, key)
    with cache.locked(path):
        record = None if mode == "force" else cache.load(path, key)
        source = "cache"
        if record is None:
            record, source = calibrate(model_dir, metadata, threads, timer), "calibrated"
            record["key"] = key
            path = cache.save(path, record)
            log.info("calibrated %s in %.1f s: %s", model_dir, record["seconds"], record["plan"]["name"])
    plan = Plan(**{k: v for k, v in record["plan"].items() if k != "name"})
    return plan, {**record, "source": source, "path": str(path) if path else None}
