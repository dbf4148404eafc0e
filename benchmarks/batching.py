"""Section 4 of the suite, batching under load: many concurrent single-sequence clients on /predict_one through a
raw keep-alive socket client, batch sizes read from /metrics (BentoML's adaptive batching joins concurrent requests),
for the shipped server and a 1-worker one. 32 clients vs 1 is reported, with no target (issue 23)."""
from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from benchmarks.report import band, fmt, say, table, target
from benchmarks.server import cpu_seconds, predictor_workers, start_server

ONE_WORKER = {"BINDCNN_WORKERS": "1"}  # the layout before issue 12: one process, ONNX Runtime on all cores
CLIENTS = (1, 8, 32)


def scrape_batches(url: str) -> dict[str, float]:
    """bindcnn_batch_size histogram of predict_one (sequences per model call, BentoML's adaptive batches):
    {'sum', 'count', 'le=B': cumulative}."""
    import httpx

    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if not line.startswith("bindcnn_batch_size") or 'endpoint="predict_one"' not in line:
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
    ~0.05 ms of CPU per request (httpx ~0.6 ms; measured earlier), so the benchmark measures the server."""
    reader = writer = None
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.lower().partition(b":")
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = b"close" in value
            body = await reader.readexactly(length)
            if close:  # the server closed this connection: open another
                writer.close()
                reader = writer = None
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


def batching_rows(server, quick: bool, label: str) -> tuple[list[list], dict[int, dict]]:
    """Table rows for 1, 8 and 32 clients, and per client count {'rate', 'errors', 'cpu' (ms/request), 'batch'}."""
    from serving.dna import random_dna

    seqs = random_dna(512, 200, seed=5)
    seconds = 3.0 if quick else 8.0
    workers = predictor_workers(server)
    rows, stats = [], {}
    for n in CLIENTS:
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
        stats[n] = {"rate": res["ok"] / res["wall"], "errors": res["errors"], "cpu": server_cpu, "batch": mean_batch}
        errs = ", ".join(f"{k}: {v}" for k, v in res["errors"].items()) or "0"
        rows.append([label, n, fmt(stats[n]["rate"]), f"{stats[n]['rate'] / stats[1]['rate']:.2f}x",
                     f"{np.percentile(lat, 50):.1f}" if len(lat) else "-",
                     f"{np.percentile(lat, 99):.1f}" if len(lat) else "-", f"{mean_batch:.1f}",
                     f"<= {p90:g}", int(count), f"{server_cpu:.2f}", errs])
    return rows, stats


def cpu_ceiling_note(stats: dict[int, dict]) -> str:
    """Why 32 clients do not get more throughput, from this run's CPU per request and batch sizes."""
    one, many = stats[1], stats[32]
    cores = os.cpu_count() or 1
    ceiling = cores / (many["cpu"] / 1000) if many["cpu"] > 0 else float("inf")
    fell = "fell" if many["cpu"] < 0.8 * one["cpu"] else "did not fall by 20% or more"
    return (f"server CPU per request was {one['cpu']:.2f} ms with 1 client and {many['cpu']:.2f} ms with 32 "
            f"(mean batch {one['batch']:.1f} -> {many['batch']:.1f}): it {fell} as batches grew; {cores} cores / "
            f"{many['cpu']:.2f} ms = a CPU ceiling of ~{ceiling:,.0f} requests/s = {ceiling / one['rate']:.1f}x one "
            "client (the 1-worker rows of section 4 show what one Python process per core changes)")


def section_batching(server, model: Path, work: Path, quick: bool) -> str:
    seconds = 3.0 if quick else 8.0
    shipped = f"as shipped: {len(predictor_workers(server))} predictor workers (one per core), 1 ONNX Runtime thread each"
    rows, stats = batching_rows(server, quick, shipped)
    gain = stats[32]["rate"] / stats[1]["rate"]
    target("32 concurrent single-sequence clients: errors", "0", float(sum(stats[32]["errors"].values())), 0.0,
           unit="", lower_is_better=True)
    say(f"32 concurrent clients vs 1 client (throughput, no target): {gain:.2f}x; {cpu_ceiling_note(stats)}")
    say("4b. batching with 1 predictor worker")
    other, _ = start_server(model, work / "bentoml", ONE_WORKER)
    try:
        rows2, stats2 = batching_rows(other, quick, "1 predictor worker, ONNX Runtime on all cores")
    finally:
        other.stop()
    env = " ".join(f"{k}={v}" for k, v in ONE_WORKER.items())
    vs = stats[32]["rate"] / stats2[32]["rate"]
    return (f"## 4. Batching under load: N concurrent clients, one sequence per request to /predict_one, {seconds:g} s "
            "each (a raw keep-alive HTTP/1.1 client, so the client's own CPU stays small)\n\n"
            + table(["server", "clients", "requests/s", "x 1 client", "p50 ms", "p99 ms", "mean batch (/metrics)",
                     "90% of batches", "batches", "server CPU ms/request", "errors"], rows + rows2)
            + f"\n\nThe second configuration is the same service started with `{env}` (the layout before "
              f"serving/service/workers.py: one Python process for the per-request work). At 32 clients the shipped "
              f"layout served {vs:.2f}x its throughput: {band(vs, [(1.1, 'more'), (0.9, 'about the same')], 'less')} "
              "(more: >= 1.1x; about the same: 0.9-1.1x).\n\n"
              f"32 concurrent clients vs 1 client on the shipped layout: {gain:.2f}x (reported, no target); "
              + cpu_ceiling_note(stats) + ".")
