"""Where a client's keep-alive connections land on a real server's predictor workers, and what that does to JSON
/predict throughput: fresh clients of 4 connections each, 1000 sequences per request, 4 requests in flight.

    python -m benchmarks.placement [--trials 8] [--no-balance] [--model models/ctcf]

Prints one line per client: connections per worker (from /proc: each worker's established sockets on the
server's port) and sequences/s. --no-balance starts the server with BINDCNN_BALANCE=0 (serving/service/balance.py).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.server import predictor_workers, start_server

CONNECTIONS = 4
SEQUENCES = 8000  # per round: 8 requests of 1000


def established_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections whose local port is `port` (/proc/net/tcp and tcp6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(fields[9])
    return inodes


def connections_per_worker(pids: list[int], port: int) -> list[int]:
    """Established server-side connections on `port` held by each pid, largest first."""
    inodes = established_inodes(port)
    counts = []
    for pid in pids:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            held += target.startswith("socket:[") and target[8:-1] in inodes
        counts.append(held)
    return sorted(counts, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.placement", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8, help="fresh clients, one after another (default 8)")
    parser.add_argument("--no-balance", action="store_true", help="server with BINDCNN_BALANCE=0")
    parser.add_argument("--model", default="models/ctcf", help="exported model folder (default models/ctcf)")
    args = parser.parse_args(argv)
    import httpx

    from serving.dna import random_dna

    if not (Path(args.model) / "metadata.json").exists():
        print(f"no exported model in {args.model}: run `make train` or pass --model", file=sys.stderr)
        return 2
    env = {"BINDCNN_BALANCE": "0"} if args.no_balance else {}
    with tempfile.TemporaryDirectory(prefix="bindcnn-placement-") as home:
        server, _ = start_server(Path(args.model), Path(home), env=env)
        try:
            pids, port = predictor_workers(server), int(server.url.rsplit(":", 1)[1])
            seqs = random_dna(SEQUENCES, 200, seed=1)
            pool = ThreadPoolExecutor(CONNECTIONS)
            print(f"{len(pids)} predictor workers; balance {'off' if args.no_balance else 'on'}; "
                  f"{CONNECTIONS} connections per client")
            for trial in range(args.trials):
                limits = httpx.Limits(max_connections=CONNECTIONS)
                with httpx.Client(base_url=server.url, timeout=60, limits=limits) as client:
                    def post(i: int) -> None:
                        client.post("/predict", json={"sequences": seqs[i:i + 1000]}).raise_for_status()

                    list(pool.map(post, range(0, SEQUENCES, 1000)))  # opens the connections
                    t0 = time.perf_counter()
                    for _ in range(3):
                        list(pool.map(post, range(0, SEQUENCES, 1000)))
                    rate = 3 * SEQUENCES / (time.perf_counter() - t0)
                    placed = connections_per_worker(pids, port)
                print(f"client {trial + 1}: connections per worker {placed}, {rate:,.0f} sequences/s", flush=True)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
