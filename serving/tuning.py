"""`bindcnn tune --model DIR`: time a few CPU settings of the predictor on this machine and store the fastest in the
model's metadata.json ("runtime_plan"), which the Predictor then uses. Explicit and optional: nothing runs it
implicitly; the predictor's fixed settings (serving/predictor.py) need no tuning to be fast.

The plan records what it was tuned for (model.onnx's sha256, the CPU, the thread count, ONNX Runtime's version); a
predictor that differs in any of them ignores it with a one-line note. metadata.json is not among the files its
checksums cover, so a stored plan leaves `verify_model_dir` passing.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from serving.artifact import METADATA_FILE, ONNX_FILE, probe_inputs, read_metadata, verify_model_dir
from serving.predictor import PLAN_KEY, Predictor, Settings, cores_given

log = logging.getLogger("bindcnn.tuning")

BATCHES = (1000, 4096)  # a /predict request (score --url sends 1000) and a batch of score --local
ROUNDS = 5
MARGIN = 1.03  # a candidate must beat the fixed defaults by this (median over batches) to be stored


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (else the machine type), e.g. 'AMD EPYC 9B14'."""
    import platform

    try:
        found = re.search(r"^(?:model name|Model|cpu model)\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M)
    except OSError:
        found = None
    return found.group(1).strip() if found else (platform.processor() or platform.machine())


def tuned_for(metadata: dict[str, Any], threads: int) -> dict[str, Any]:
    """What a plan is valid for: model.onnx's sha256 (from metadata's checksums), the CPU, threads, ONNX Runtime."""
    import onnxruntime as ort

    return {ONNX_FILE: (metadata.get("files") or {}).get(ONNX_FILE), "cpu": cpu_name(), "threads": threads,
            "onnxruntime": ort.__version__}


def plan_settings(metadata: dict[str, Any], threads: int) -> Settings | None:
    """metadata's runtime_plan as Settings when it was tuned for this model file, CPU, threads and ONNX Runtime;
    else None, with a one-line note saying what differs."""
    plan = metadata.get(PLAN_KEY)
    want = tuned_for(metadata, threads)
    got = plan.get("tuned_for") if isinstance(plan, dict) else None
    if not isinstance(got, dict):
        log.warning("note: metadata.json's %s is not one `bindcnn tune` wrote; using the fixed settings", PLAN_KEY)
        return None
    differs = [f"{key}={str(got.get(key))[:40]} (here {str(value)[:40]})" for key, value in want.items()
               if got.get(key) != value]
    if differs:
        log.warning("note: metadata.json's %s was tuned for %s; using the fixed settings (`bindcnn tune` tunes "
                    "for this one)", PLAN_KEY, ", ".join(differs))
        return None
    try:
        return Settings(**plan["settings"])
    except (KeyError, TypeError):
        log.warning("note: metadata.json's %s has no valid settings; using the fixed settings", PLAN_KEY)
        return None


def candidates(threads: int) -> list[Settings]:
    """The fixed defaults first, then a few other run sizes and, with several threads, one session with intra-op
    threads instead of Python threads."""
    default = Settings(threads=threads)
    others = [Settings(threads, True, chunk) for chunk in (192, 256, 512)]
    if threads > 1:
        others += [Settings(threads, False, chunk) for chunk in (512, 1024)]
    return [default] + [s for s in others if s != default]


def time_interleaved(calls: dict[str, Callable[[np.ndarray], Any]], x: np.ndarray, batches=BATCHES,
                     rounds: int = ROUNDS, total: int = 8192) -> dict[str, dict[int, float]]:
    """Median sequences/s of every call at every batch size (x: (>= max batch, L, 4) float32): each round times
    each call on about `total` sequences per batch size, the calls' order rotated each round, so a load that
    drifts falls on all of them alike. Batch 1 is timed over 500 calls."""
    names = list(calls)
    for call in calls.values():  # warm-up: memory arenas, thread pools
        for b in batches:
            call(x[:b])
    rates: dict[str, dict[int, list[float]]] = {name: {b: [] for b in batches} for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            for b in batches:
                xb, n = np.ascontiguousarray(x[:b]), 500 if b == 1 else max(1, total // b)
                t0 = time.perf_counter()
                for _ in range(n):
                    calls[name](xb)
                rates[name][b].append(n * b / (time.perf_counter() - t0))
            time.sleep(0.05)  # let another configuration's idle threads settle
    return {name: {b: statistics.median(v) for b, v in per.items()} for name, per in rates.items()}


def tune(model_dir: str | os.PathLike, threads: int | None = None, rounds: int = ROUNDS) -> dict[str, Any]:
    """Time candidates(threads) at BATCHES and return the plan: {"settings", "tuned_for", "measured" (name ->
    {batch: seq/s}), "gain" (chosen over the defaults), "tuned_at"}. The defaults stay unless another
    candidate's median gain over them is >= MARGIN."""
    threads = threads or cores_given()
    meta = verify_model_dir(model_dir)
    predictors = {s.name: Predictor(model_dir, device="cpu", verify=False, settings=s) for s in candidates(threads)}
    x = probe_inputs(meta["sequence_length"], max(BATCHES))
    measured = time_interleaved({k: p.predict_onehot for k, p in predictors.items()}, x, rounds=rounds)
    default = next(iter(measured))
    gains = {k: statistics.median(v[b] / measured[default][b] for b in BATCHES) for k, v in measured.items()}
    best = max(gains, key=gains.get)
    chosen = best if gains[best] >= MARGIN else default
    for p in predictors.values():
        p.close()
    return {"settings": asdict(predictors[chosen].settings),
            "tuned_for": tuned_for(meta, threads),
            "measured": {k: {str(b): round(r) for b, r in v.items()} for k, v in measured.items()},
            "gain": round(gains[chosen], 3), "tuned_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def write_plan(model_dir: str | os.PathLike, plan: dict[str, Any]) -> Path:
    """Store plan as metadata.json's runtime_plan (written atomically; every other key kept as it was)."""
    path = Path(model_dir) / METADATA_FILE
    meta = read_metadata(model_dir)
    meta[PLAN_KEY] = plan
    tmp = path.with_name(f".{METADATA_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def cmd_tune(args) -> int:
    """`bindcnn tune`: time the candidates, print them, store the choice (unless --dry-run)."""
    from serving.cli.parsers import EXIT_OK
    from serving.console import say

    threads = args.threads or cores_given()
    say(f"timing {len(candidates(threads))} settings of {args.model} on {threads} thread(s), batches "
        f"{', '.join(map(str, BATCHES))}, {args.rounds} interleaved rounds ...")
    plan = tune(args.model, threads, args.rounds)
    chosen = Settings(**plan["settings"]).name
    width = max(len(k) for k in plan["measured"])
    print(f"{'settings':{width}}  " + "  ".join(f"{'batch ' + str(b):>12}" for b in BATCHES))
    for name, per in plan["measured"].items():
        print(f"{name:{width}}  " + "  ".join(f"{per[str(b)]:>12,}" for b in BATCHES) + ("  <- chosen" if
                                                                                        name == chosen else ""))
    if args.dry_run:
        say(f"would store: {chosen} ({plan['gain']:.2f}x the fixed defaults); --dry-run: nothing written")
        return EXIT_OK
    path = write_plan(args.model, plan)
    say(f"stored in {path} ({PLAN_KEY}): {chosen}, {plan['gain']:.2f}x the fixed defaults; used by every predictor "
        f"of this model on this CPU with {threads} thread(s)")
    return EXIT_OK

