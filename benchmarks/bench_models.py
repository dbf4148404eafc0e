"""Several models in one command (issue 26.6): whole `bindcnn score` runs with 1, 2 and 4 models on the same FASTA,
and whole `bindcnn scan --genome` runs over a genome region (one chromosome, stride 1, a bedGraph per model), interleaved rounds, medians,
as ratios to one model (reading and encoding are shared, so 4 models should cost well under 4x one); and what each
added model costs (seconds to load, resident memory after scoring a batch of 1000). No server.

    python -m benchmarks.bench_models [--quick] [--model models/ctcf] [--n 100000] [--scan-bp 500000] [--out FILE]

The copies of --model are its folder under other names (the same weights: the cost of a model, not its answers).
"""
from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COUNTS = (1, 2, 4)
LOAD_CODE = """
import json, sys, time
from serving.predictor import Predictor
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024
import numpy as np
base = rss(); t = time.perf_counter()
ps = [Predictor(m, device='cpu') for m in sys.argv[1:]]
seconds = time.perf_counter() - t
codes = np.random.default_rng(0).integers(0, 4, (1000, ps[0].length)).astype(np.uint8)
for p in ps:
    p.predict_codes(codes)
print(json.dumps({'seconds': seconds, 'mb': rss() - base}))
"""


def cpu_name() -> str:
    try:
        return next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def command_seconds(command: str, models: list[Path], fasta: Path, out: Path) -> float:
    """Wall seconds of one whole `python -m serving score --model ... FASTA -o OUT -q` (start-up included), or of
    `scan --genome FASTA --bedgraph OUT` (one bedGraph per model)."""
    where = [str(fasta), "-o", str(out)] if command == "score" else ["--genome", str(fasta), "--bedgraph", str(out)]
    cmd = [sys.executable, "-m", "serving", command, *[a for m in models for a in ("--model", str(m))],
           *where, "-q"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def load_cost(models: list[Path]) -> dict[str, float]:
    """Seconds and resident MB to load these models' Predictors in a fresh process (imports excluded)."""
    import json

    out = subprocess.run([sys.executable, "-c", LOAD_CODE, *map(str, models)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("models/ctcf"))
    ap.add_argument("--n", type=int, default=100_000, help="FASTA records (default %(default)s)")
    ap.add_argument("--scan-bp", type=int, default=500_000, help="length of the record scanned (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="20,000 records, 100 kb scanned, 2 rounds")
    ap.add_argument("--out", type=Path, help="also write the tables to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.scan_bp, args.rounds = 20_000, 100_000, 2
    from serving.artifact import read_metadata
    from serving.dna import random_dna
    from serving.fasta import write_fasta

    length = read_metadata(args.model)["sequence_length"]
    with tempfile.TemporaryDirectory(prefix="bindcnn-bench-models-") as tmp:
        tmp = Path(tmp)
        copies = [tmp / f"m{i}" for i in range(1, max(COUNTS) + 1)]
        for c in copies:
            shutil.copytree(args.model, c)
        fasta = tmp / "in.fa"
        write_fasta([(f"r{i}", s) for i, s in enumerate(random_dna(args.n, length, seed=1))], fasta)
        long = tmp / "long.fa"
        write_fasta([("chr1", random_dna(1, args.scan_bp, seed=2)[0])], long)
        seconds = {k: [] for k in COUNTS}
        scans = {k: [] for k in COUNTS}
        loads = {k: [] for k in COUNTS}
        for r in range(args.rounds):
            for k in COUNTS if r % 2 == 0 else COUNTS[::-1]:  # alternate the order: drift hits every count
                seconds[k].append(command_seconds("score", copies[:k], fasta, tmp / "out.tsv"))
                scans[k].append(command_seconds("scan", copies[:k], long, tmp / "out.bedgraph"))
                loads[k].append(load_cost(copies[:k]))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} model(s) score {seconds[k][-1]:.2f} s, scan "
                                                              f"{scans[k][-1]:.2f} s" for k in COUNTS), file=sys.stderr)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    scan_med = {k: statistics.median(v) for k, v in scans.items()}
    load_s = {k: statistics.median(x["seconds"] for x in v) for k, v in loads.items()}
    load_mb = {k: statistics.median(x["mb"] for x in v) for k, v in loads.items()}
    lines = [f"# Several models in one command ({args.n:,} FASTA records of {length} nt, {args.rounds} interleaved "
             f"rounds, medians; {cpu_name()})", "",
             f"| models | whole `score` s | vs 1 model | whole `scan --genome` of {args.scan_bp:,} bp s | vs 1 model | "
             "load s | MB after a batch |", "|---|---|---|---|---|---|---|"]
    for k in COUNTS:
        lines.append(f"| {k} | {med[k]:.2f} | {med[k] / med[1]:.2f}x | {scan_med[k]:.2f} | "
                     f"{scan_med[k] / scan_med[1]:.2f}x | {load_s[k]:.3f} | {load_mb[k]:.0f} |")
    per_s = (load_s[max(COUNTS)] - load_s[1]) / (max(COUNTS) - 1)
    per_mb = (load_mb[max(COUNTS)] - load_mb[1]) / (max(COUNTS) - 1)
    lines += ["", f"Each added model: {1000 * per_s:.0f} ms to load and {per_mb:.0f} MB resident after a batch of "
              f"1000 (Predictor, CPU; the first model's figures include ONNX Runtime itself); 4 models cost "
              f"{med[4] / med[1]:.2f}x one to score and {scan_med[4] / scan_med[1]:.2f}x to scan (4x = no sharing)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
