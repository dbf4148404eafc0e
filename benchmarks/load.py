"""Bounded load test of the HTTP service on loopback: N concurrent asyncio clients over mixed endpoints for a
fixed time, every answer checked against in-process ONNX Runtime, p50/p95/p99 latency and worker RSS reported.

`python -m benchmarks.load --help`. With --kill-after S the predictor worker is SIGKILLed S seconds in: it must
be restarted and answer again, and requests in flight get an error, never a wrong answer. A probe loop asks
/readyz and /livez all along (what Kubernetes does) and the report gives the worst probe latency: each must
answer 200 within PROBE_BOUND_S. Exit codes: 0 the run met its bounds; 1 errors (or, with --kill-after, wrong
answers / no recovery), memory growth beyond the bound or a slow/failed probe; 2 bad arguments or no model.
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import publish
from benchmarks.load_report import Stats, report
from benchmarks.probes import probe_loop
from benchmarks.server import worker_roles
from serving.store import DEFAULT_MODEL_TAG

POOL = 512  # distinct sequences the clients draw from
TOL = 1e-5  # a served probability/logit vs in-process ONNX Runtime
# Endpoint mix: (name, weight). Saliency is rare: it is ~100x dearer and has its own small cap; --saliency-clients
# adds clients that send nothing else. Probes run in their own loop (probe_loop); `--with-readyz` also mixes
# /readyz into the clients' requests.
MIX = [("predict", 35), ("predict_one", 30), ("predict_fasta", 10), ("predict_onehot", 10), ("saliency", 10),
       ("model", 5)]
READYZ = ("readyz", 5)
SALIENCY_ONLY = [("saliency", 1)]


def reference(model_dir: Path, n: int = POOL, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """n random sequences of the model's length and their in-process probability, logit: (n,) each."""
    from serving.artifact import read_metadata
    from serving.predictor import Predictor

    from serving.dna import random_dna

    seqs = random_dna(n, read_metadata(model_dir)["sequence_length"], seed)
    out = Predictor(model_dir, device="cpu").predict_sequences(seqs)
    return seqs, out["probability"], out["logit"]


def _npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


async def one_client(client, rng: random.Random, seqs, prob, logit, stats: Stats, t0: float, stop_at: float,
                     mix=MIX) -> None:
    """Send requests until stop_at (time.monotonic()); record latency, errors and wrong answers."""
    import httpx

    from serving.dna import encode

    names, weights = zip(*mix)
    while time.monotonic() < stop_at:
        name = rng.choices(names, weights)[0]
        k = rng.randint(1, 20)
        idx = [rng.randrange(len(seqs)) for _ in range(k)]
        start = time.monotonic()
        try:
            if name == "predict":
                r = await client.post("/predict", json={"sequences": [seqs[i] for i in idx]})
            elif name == "predict_one":
                idx = idx[:1]
                r = await client.post("/predict_one", json={"sequences": [seqs[idx[0]]]})
            elif name == "predict_fasta":
                text = "".join(f">r{j}\n{seqs[i]}\n" for j, i in enumerate(idx)).encode()
                gz = rng.random() < 0.5
                r = await client.post("/predict_fasta", files={"fasta": ("x.fa.gz" if gz else "x.fa",
                                                                          gzip.compress(text) if gz else text)})
            elif name == "predict_onehot":
                x = encode([seqs[i] for i in idx]).astype(np.uint8)
                r = await client.post("/predict_onehot", files={"array": ("x.npy", _npy(x))})
            elif name == "saliency":
                idx = idx[:1]
                r = await client.post("/saliency", json={"sequences": [seqs[idx[0]]]})
            elif name == "model":
                r = await client.get("/model")
            else:
                r = await client.get("/readyz")
        except httpx.HTTPError as exc:
            stats.errors[f"{name}: {type(exc).__name__}"] += 1
            stats.error_times.append(time.monotonic() - t0)
            await asyncio.sleep(0.05)
            continue
        elapsed = time.monotonic() - start
        if r.status_code != 200:
            stats.errors[f"{name}: HTTP {r.status_code}"] += 1
            stats.error_times.append(time.monotonic() - t0)
            await asyncio.sleep(0.05)
            continue
        problem = check_answer(name, r, idx, prob, logit)
        if problem:
            stats.wrong.append(f"{name}: {problem}")
        else:
            stats.latencies[name].append(elapsed)
            stats.ok_times.append(time.monotonic() - t0)


def check_answer(name: str, r, idx: list[int], prob: np.ndarray, logit: np.ndarray) -> str | None:
    """None when a 200 answer is right (values within TOL of in-process ONNX Runtime), else what is wrong."""
    try:
        body = r.json() if name != "readyz" else None
    except ValueError:
        return "not JSON"
    if name == "predict_one":
        got_p, got_z = [body[0]["probability"]], [body[0]["logit"]]
    elif name == "predict_fasta":
        if [row["id"] for row in body] != [f"r{j}" for j in range(len(idx))]:
            return "ids out of order"
        got_p, got_z = [row["probability"] for row in body], [row["logit"] for row in body]
    elif name in ("predict", "predict_onehot"):
        got_p, got_z = body["probability"], body["logit"]
    elif name == "saliency":
        scores = np.asarray(body["scores"])
        return None if scores.shape == (1, 200, 4) and np.isfinite(scores).all() else f"scores {scores.shape}"
    else:
        return None
    if len(got_p) != len(idx):
        return f"{len(got_p)} answers for {len(idx)} sequences"
    if np.abs(np.asarray(got_p) - prob[idx]).max() > TOL or np.abs(np.asarray(got_z) - logit[idx]).max() > TOL * max(
            1.0, float(np.abs(logit[idx]).max())):
        return f"values differ from in-process ONNX Runtime beyond {TOL}"
    return None


async def sample_rss(server_pid: int, t0: float, stop_at: float, every: float,
                     samples: list[tuple[float, int, str, float]]) -> None:
    """Append (seconds, pid, role, RSS MB) of every worker every `every` seconds until stop_at."""
    import psutil

    while time.monotonic() < stop_at:
        for pid, role in worker_roles(server_pid).items():
            try:
                samples.append((time.monotonic() - t0, pid, role, psutil.Process(pid).memory_info().rss / 2**20))
            except psutil.Error:
                pass
        await asyncio.sleep(every)


async def killer(server_pid: int, after: float, t0: float, events: dict) -> None:
    """SIGKILL the predictor worker `after` seconds in; record when a new one appears."""
    await asyncio.sleep(after)
    victims = [pid for pid, role in worker_roles(server_pid).items() if role == "predictor"]
    if not victims:
        events["kill_error"] = "no predictor worker found"
        return
    os.kill(victims[0], signal.SIGKILL)
    events.update(killed_pid=victims[0], killed_at=time.monotonic() - t0)
    while True:
        await asyncio.sleep(0.1)
        new = [pid for pid, role in worker_roles(server_pid).items() if role == "predictor" and pid != victims[0]]
        if new:
            events.update(new_pid=new[0], respawned_at=time.monotonic() - t0)
            return


async def run_load(url: str, server_pid: int | None, model_dir: Path, clients: int = 32, seconds: float = 60,
                   kill_after: float | None = None, sample_every: float = 1.0, seed: int = 0,
                   mix=MIX, saliency_clients: int = 0, probe_every: float = 0.25) -> dict:
    """Drive the server at url with `clients` clients on `mix` plus `saliency_clients` on /saliency only;
    returns {'stats', 'rss' samples, 'events', 'seconds', 'probes'}."""
    import httpx

    seqs, prob, logit = reference(model_dir)
    stats, samples, events, probes = Stats(), [], {}, []
    total = clients + saliency_clients
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=total)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        t0 = time.monotonic()
        stop_at = t0 + seconds
        tasks = [one_client(client, random.Random(seed + i), seqs, prob, logit, stats, t0, stop_at,
                            mix if i < clients else SALIENCY_ONLY) for i in range(total)]
        if probe_every > 0:
            tasks.append(probe_loop(url, t0, stop_at, probe_every, probes))
        if server_pid:
            tasks.append(sample_rss(server_pid, t0, stop_at, sample_every, samples))
            if kill_after is not None:
                tasks.append(asyncio.wait_for(killer(server_pid, kill_after, t0, events), seconds + 30))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - t0
    if "killed_at" in events:
        after = [t for t in stats.ok_times if t > events["killed_at"]]
        errs = [t for t in stats.error_times if t >= events["killed_at"]]
        if errs:
            events["last_error_at"] = max(errs)
            later = [t for t in after if t > max(errs)]
            events["recovered_at"] = min(later) if later else None
        else:
            events["recovered_at"] = min(after) if after else None
    return {"stats": stats, "rss": samples, "events": events, "seconds": elapsed, "probes": probes}


def smoke_model(home: Path) -> str:
    """Train a tiny model into BENTOML_HOME=home (2000 synthetic sequences, 3 epochs); return its tag."""
    import subprocess

    os.environ["BENTOML_HOME"] = str(home)
    data = home / "smoke.h5"
    py = sys.executable
    subprocess.run([py, "-m", "training", "synthetic", "--out", str(data), "--n", "2000"], check=True,
                   capture_output=True)
    subprocess.run([py, "-m", "training", "train", "--data", str(data), "--name", "loadsmoke", "--epochs", "3",
                    "--models", str(home / "exports")], check=True, capture_output=True)
    return "loadsmoke:latest"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default %(default)s)")
    p.add_argument("--seconds", type=float, default=60, help="duration (default %(default)s)")
    p.add_argument("--model", default=os.environ.get("BINDCNN_MODEL", DEFAULT_MODEL_TAG),
                   help=f"model tag in the BentoML store (default: $BINDCNN_MODEL or {DEFAULT_MODEL_TAG})")
    p.add_argument("--smoke", action="store_true", help="train a tiny model into a private BentoML home and use it")
    p.add_argument("--kill-after", type=float, help="SIGKILL the predictor worker after this many seconds")
    p.add_argument("--sample-every", type=float, default=1.0, help="RSS sampling period, s (default %(default)s)")
    p.add_argument("--out", type=Path, help="append the markdown report to this file (e.g. "
                   "benchmarks/RESULTS-reliability.md)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("--with-readyz", action="store_true", help="add GET /readyz to the mix (weight 5)")
    p.add_argument("--saliency-clients", type=int, default=0,
                   help="extra clients sending only /saliency (default %(default)s), e.g. 8 with --clients 24")
    p.add_argument("--probe-every", type=float, default=0.25,
                   help="seconds between /readyz and /livez probes; 0: no probes (default %(default)s)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="environment of the server, e.g. BINDCNN_WORKERS=1 (repeatable)")
    args = p.parse_args(argv)
    mix = MIX + [READYZ] if args.with_readyz else MIX
    if args.clients < 1 or args.seconds <= 0 or (args.kill_after is not None and not 0 < args.kill_after < args.seconds):
        p.error("need clients >= 1, seconds > 0 and 0 < --kill-after < --seconds")
    if args.saliency_clients < 0 or args.probe_every < 0 or any("=" not in e for e in args.env):
        p.error("need --saliency-clients >= 0, --probe-every >= 0 and --env NAME=VALUE")
    command = "python -m benchmarks.load " + " ".join(argv if argv is not None else sys.argv[1:])

    tmp = None
    if args.smoke:
        tmp = tempfile.TemporaryDirectory(prefix="bindcnn-load-")
        args.model = smoke_model(Path(tmp.name))
    from serving.artifact import ArtifactError
    from serving.store import resolve

    try:
        model_dir = resolve(args.model)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from serving.service.launch import Server  # the same start/stop as the tests and `bindcnn serve`

    srv = Server.for_model(args.model)  # the environment (BENTOML_HOME included) passes through
    srv.env.update(e.split("=", 1) for e in args.env)
    print(f"starting bentoml serve on {srv.url} with {args.model} ...", file=sys.stderr)
    srv.start()
    try:
        print(f"{args.clients} clients for {args.seconds:g} s"
              + (f", killing the predictor worker at {args.kill_after:g} s" if args.kill_after else ""),
              file=sys.stderr)
        result = asyncio.run(run_load(srv.url, srv.proc.pid, model_dir, args.clients, args.seconds,
                                      args.kill_after, args.sample_every, args.seed, mix, args.saliency_clients,
                                      args.probe_every))
    finally:
        srv.stop()
        if tmp is not None:
            tmp.cleanup()
    text, passed = report(result, args, command, mix, TOL)
    return publish(text, passed, args.out, "server output", srv.output())


if __name__ == "__main__":
    sys.exit(main())
