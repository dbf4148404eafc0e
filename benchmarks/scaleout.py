"""Local scale-out check: two predictor servers behind Debian's HAProxy on loopback, a bounded load through it,
one server SIGKILLed mid-run (as a crashed container): HAProxy drains it (health checks on /readyz, failed
connections retried on the other), 0 requests lost beyond those in flight on the killed one, every answer checked.

`python -m benchmarks.scaleout --smoke --out benchmarks/RESULTS-scaleout.md` (needs `apt-get install haproxy`).
Exit codes: 0 passed; 1 a request started after the kill failed, a wrong answer, or no recovery; 2 bad
arguments, no model or no haproxy. Saliency is not in the mix: the predictors run without an explainer.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.load import check_answer, reference, smoke_model, _npy
from benchmarks.report import machine, machine_line, publish
from serving.store import DEFAULT_MODEL_TAG

MIX = [("predict", 45), ("predict_one", 25), ("predict_fasta", 15), ("predict_onehot", 15)]
HAPROXY_CFG = """global
    maxconn 2000
    stats socket {sock} mode 600 level admin
    log stderr format raw local0 info
defaults
    mode http
    log global
    option httplog
    # the whole request (multipart uploads too) is read before a server is chosen, so that it can be re-sent
    option http-buffer-request
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch 1
    # a request the dead server never took (refused connection) or never answered is sent to the other one
    retry-on conn-failure empty-response response-timeout
frontend predictors
    bind 127.0.0.1:{port}
    default_backend predictors
backend predictors
    balance roundrobin
    # a new server connection per request: a request is never written to an idle connection of a dead server
    # (HAProxy then closes the client's connection instead of retrying)
    http-reuse never
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fastinter 250ms downinter 1s fall 2 rise 2
{servers}
"""


def start_haproxy(binary: str, backends: list[str], work: Path):
    """HAProxy in the foreground on a free loopback port over `backends` (host:port); (process, url, socket)."""
    from serving.service.launch import free_port

    port, sock = free_port(), work / "haproxy.sock"
    servers = "\n".join(f"    server p{i + 1} {b} check" for i, b in enumerate(backends))
    (work / "haproxy.cfg").write_text(HAPROXY_CFG.format(sock=sock, port=port, servers=servers))
    with open(work / "haproxy.log", "wb") as log:
        proc = subprocess.Popen([binary, "-db", "-f", str(work / "haproxy.cfg")], stdout=log, stderr=log,
                                start_new_session=True)
    return proc, f"http://127.0.0.1:{port}", sock


def haproxy_stats(sock: Path) -> dict[str, dict[str, str]]:
    """`show stat` over the admin socket: server name -> {status, stot (requests), ...}."""
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        s.sendall(b"show stat\n")
        data = b"".join(iter(lambda: s.recv(65536), b""))
    lines = data.decode().strip().splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    return {r["svname"]: r for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")}


def wait_up(haproxy, sock: Path, log: Path, timeout: float = 20) -> None:
    """Until HAProxy's health checks see every server UP; RuntimeError with its log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and haproxy.poll() is None:
        try:
            if all(row["status"] == "UP" for row in haproxy_stats(sock).values()):
                return
        except OSError:  # its socket is not there yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"haproxy did not see both servers up: {log.read_text()[-2000:]}")


async def client(http, rng, seqs, prob, logit, stop_at, log: list) -> None:
    """Send requests until stop_at; append (start, end, endpoint, outcome) with outcome "ok", "wrong: ..." or
    the error."""
    import httpx

    from serving.dna import encode

    names, weights = zip(*MIX)
    while time.monotonic() < stop_at:
        name = rng.choices(names, weights)[0]
        idx = [rng.randrange(len(seqs)) for _ in range(1 if name == "predict_one" else rng.randint(1, 20))]
        start = time.monotonic()
        try:
            if name == "predict":
                r = await http.post("/predict", json={"sequences": [seqs[i] for i in idx]})
            elif name == "predict_one":
                r = await http.post("/predict_one", json={"sequences": [seqs[idx[0]]]})
            elif name == "predict_fasta":
                text = "".join(f">r{j}\n{seqs[i]}\n" for j, i in enumerate(idx)).encode()
                r = await http.post("/predict_fasta", files={"fasta": ("x.fa", text)})
            else:
                x = encode([seqs[i] for i in idx]).astype("uint8")
                r = await http.post("/predict_onehot", files={"array": ("x.npy", _npy(x))})
            problem = check_answer(name, r, idx, prob, logit) if r.status_code == 200 else None
            outcome = f"wrong: {problem}" if problem else "ok" if r.status_code == 200 else f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        log.append((start, time.monotonic(), name, outcome))


async def drive(url, seqs, prob, logit, clients, seconds, kill_after, victim) -> dict:
    import httpx

    log: list = []
    events: dict = {}
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 limits=httpx.Limits(max_connections=clients)) as http:
        t0 = time.monotonic()

        async def killer():
            await asyncio.sleep(kill_after)
            events["killed_pids"] = victim()
            events["kill"] = time.monotonic()  # every SIGKILL sent

        await asyncio.gather(killer(), *[client(http, random.Random(i), seqs, prob, logit, t0 + seconds, log)
                                          for i in range(clients)])
    return {"log": log, "t0": t0, "events": events}


def report(result: dict, stats: dict, args, command: str) -> tuple[str, bool]:
    t0, kill = result["t0"], result["events"]["kill"]
    log = result["log"]
    bad = [r for r in log if r[3] != "ok"]
    before = [r for r in bad if r[1] < kill]  # failed before anything was killed
    in_flight = [r for r in bad if r[0] < kill <= r[1]]
    lost = [r for r in bad if r[0] >= kill]  # sent after the kill: HAProxy should have routed them elsewhere
    wrong = [r for r in log if r[3].startswith("wrong")]
    after = [r for r in log if r[0] >= kill and r[3] == "ok"]
    passed = not before and not lost and not wrong and len(after) > 0 and stats["p2"]["status"].startswith("DOWN")
    lines = [f"## Scale-out check: 2 predictors behind HAProxy, {args.clients} clients, {args.seconds:g} s, one "
             f"killed at {args.kill_after:g} s ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"- command: `{command}`",
             f"- machine: {machine_line(machine(('bentoml', 'onnxruntime-gpu', 'httpx')), node=True)}; "
             f"{subprocess.run([args.haproxy, '-v'], capture_output=True, text=True).stdout.splitlines()[0]}",
             f"- mix (weights): {', '.join(f'{n} {w}' for n, w in MIX)}; every answer checked against in-process "
             "ONNX Runtime; each predictor `bentoml serve` with BINDCNN_WORKERS=1",
             f"- requests: {len(log)} ({len(log) / args.seconds:.0f}/s); ok {len(log) - len(bad)}; failed "
             f"{len(bad)}: before the kill **{len(before)}**, in flight at the kill {len(in_flight)}, sent after "
             f"it **{len(lost)}**; wrong answers **{len(wrong)}**",
             f"- after the kill: {len(after)} requests answered, all by the survivor; HAProxy marked the killed "
             f"server {stats['p2']['status']} (health check GET /readyz every 500 ms, fall 2)", "",
             "| server | state at the end | requests (HAProxy stot) | retries | redispatched |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {name} | {row['status']} | {row['stot']} | {row.get('wretr', '')} | {row.get('wredis', '')} |"
              for name, row in sorted(stats.items())]
    if bad:
        lines += ["", "Failed requests: " + ", ".join(f"{r[2]} {r[3]} (sent {r[0] - t0:.2f} s, kill at "
                                                       f"{kill - t0:.2f} s)" for r in bad[:10])]
    lines += ["", f"Result: **{'PASS' if passed else 'FAIL'}**", ""]
    return "\n".join(lines), passed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scaleout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=16, help="concurrent clients (default %(default)s)")
    p.add_argument("--seconds", type=float, default=30, help="duration (default %(default)s)")
    p.add_argument("--kill-after", type=float, default=12, help="SIGKILL server 2 after this many s (default %(default)s)")
    p.add_argument("--model", default=os.environ.get("BINDCNN_MODEL", DEFAULT_MODEL_TAG),
                   help=f"model tag in the BentoML store (default: $BINDCNN_MODEL or {DEFAULT_MODEL_TAG})")
    p.add_argument("--smoke", action="store_true", help="train a tiny model into a private BentoML home and use it")
    p.add_argument("--haproxy", default=shutil.which("haproxy") or "haproxy", help="haproxy binary")
    p.add_argument("--out", type=Path, help="append the markdown report here (e.g. benchmarks/RESULTS-scaleout.md)")
    args = p.parse_args(argv)
    if args.clients < 1 or not 0 < args.kill_after < args.seconds:
        p.error("need --clients >= 1 and 0 < --kill-after < --seconds")
    if not shutil.which(args.haproxy):
        print("error: haproxy not found: apt-get install haproxy (or --haproxy PATH)", file=sys.stderr)
        return 2
    command = "python -m benchmarks.scaleout " + " ".join(argv if argv is not None else sys.argv[1:])
    work = Path(tempfile.mkdtemp(prefix="bindcnn-scaleout-"))
    if args.smoke:
        args.model = smoke_model(work)
    from serving.artifact import ArtifactError
    from serving.service.launch import Server, end_processes
    from serving.store import resolve

    try:
        seqs, prob, logit = reference(resolve(args.model))
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from serving.service.launch import free_port

    # no explainer: saliency is not in this check (the predictors stay ready without one)
    env = {"BINDCNN_MODEL": args.model, "BINDCNN_WORKERS": "1",
           "BINDCNN_EXPLAINER_URL": f"http://127.0.0.1:{free_port()}"}
    servers, haproxy = [Server(env=env), Server(env=env)], None
    try:
        for srv in servers:
            srv.start()
        haproxy, url, sock = start_haproxy(args.haproxy, [f"127.0.0.1:{s.port}" for s in servers], work)
        wait_up(haproxy, sock, work / "haproxy.log")

        def victim() -> list[int]:  # the whole server (arbiter and worker), as a container's death would
            pids = servers[1].workers()
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            return pids

        print(f"{args.clients} clients through HAProxy {url} for {args.seconds:g} s; killing server 2 at "
              f"{args.kill_after:g} s", file=sys.stderr)
        result = asyncio.run(drive(url, seqs, prob, logit, args.clients, args.seconds, args.kill_after, victim))
        stats = haproxy_stats(sock)
    finally:
        if haproxy is not None:
            end_processes([haproxy.pid], grace=5)
        for srv in servers:
            srv.stop()
        haproxy_log = (work / "haproxy.log").read_text(errors="replace") if (work / "haproxy.log").exists() else ""
        shutil.rmtree(work, ignore_errors=True)
    text, passed = report(result, stats, args, command)
    return publish(text, passed, args.out, "HAProxy log", haproxy_log)


if __name__ == "__main__":
    sys.exit(main())
