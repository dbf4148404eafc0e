"""Scoring-at-scale benchmark: `python -m serving score` (--local, --url) and `python -m serving scan` end to end,
each beside in-process ONNX Runtime on the same sequences, as ratios. Prints a markdown table.

    python -m benchmarks.bench_scoring [--model models/ctcf] [--records 100000] [--scan-bp 1000000] [--url URL]

Without --url a `bentoml serve` is started on a free loopback port (the model is registered in a private
BentoML home) and stopped at the end. The machine may be shared and noisy: compare the ratios, not the rates.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from serving.store import DEFAULT_MODEL_DIR


def write_inputs(tmp: Path, records: int, scan_bp: int, seed: int = 0) -> tuple[Path, Path, list[str], str]:
    """records.fa (`records` random 200-nt records) and long.fa (one random `scan_bp` sequence, 80 columns)."""
    from serving.dna import random_dna

    seqs = random_dna(records, 200, seed)
    fa = tmp / "records.fa"
    fa.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
    long = random_dna(1, scan_bp, seed + 1)[0]
    lfa = tmp / "long.fa"
    lfa.write_text(f">chrB:0-{scan_bp}\n" + "\n".join(long[i : i + 80] for i in range(0, scan_bp, 80)) + "\n")
    return fa, lfa, seqs, long


def cli(args: list[str]) -> float:
    """Wall seconds of `python -m serving ARGS` (start-up included), which must succeed."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "serving", *args, "-q"], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"python -m serving {' '.join(args)} failed ({res.returncode}): {res.stderr[-2000:]}")
    return time.perf_counter() - t0


def paired(name: str, unit: str, n: int, cli_args: list[str], reference, repeat: int):
    """Alternate the CLI run with in-process ONNX Runtime on the same n sequences (the load on a shared
    machine drifts, so each ratio compares neighbours). Returns (name, median rate, median reference
    seq/s, unit-free median ratio); rate is n / seconds (bp/s for a scan at stride 1: n windows ~ n bp)."""
    rates, refs, ratios = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        reference()
        ref = n / (time.perf_counter() - t0)
        rate = n / cli(cli_args)
        rates.append(rate)
        refs.append(ref)
        ratios.append(rate / ref)
    return name, statistics.median(rates), unit, statistics.median(refs), statistics.median(ratios)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_scoring", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR, help=f"exported model folder (default {DEFAULT_MODEL_DIR})")
    p.add_argument("--records", type=int, default=100_000, help="200-nt records in the FASTA (default 100000)")
    p.add_argument("--scan-bp", type=int, default=1_000_000, help="length of the scanned sequence (default 1 Mb)")
    p.add_argument("--url", help="use this running service instead of starting one")
    p.add_argument("--no-url", action="store_true", help="skip the --url row")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; medians reported (default 3)")
    args = p.parse_args(argv)

    from benchmarks.report import machine_line
    from benchmarks.server import start_server
    from serving.dna import encode, encode_one
    from serving.predictor import Predictor
    from serving.scoring.scan import windows

    model = Path(args.model)
    predictor = Predictor(model, device="cpu")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bindcnn-bench-") as tmpdir:
        tmp = Path(tmpdir)
        fa, lfa, seqs, long = write_inputs(tmp, args.records, args.scan_bp)
        x = encode(seqs, predictor.length)
        predictor.predict_onehot(x[:4096])  # warm-up
        n_win = args.scan_bp - predictor.length + 1
        view = windows(encode_one(long), predictor.length)

        def ort_records() -> None:
            predictor.predict_onehot(x)

        def ort_windows() -> None:
            for i in range(0, n_win, 4096):
                predictor.predict_onehot(np.ascontiguousarray(view[i : i + 4096]))

        rows.append(paired(f"`score --local`, {len(seqs):,} records (wall, incl. start-up)", "seq/s", len(seqs),
                           ["score", str(fa), "--local", "--device", "cpu", "--model", str(model),
                            "-o", str(tmp / "local.tsv")], ort_records, args.repeat))
        if not args.no_url:
            server = None
            url = args.url
            if url is None:
                server, _ = start_server(model, tmp / "bentoml")
                url = server.url
            try:
                rows.append(paired("`score --url`, same FASTA (1000 per request, 4 in flight)", "seq/s", len(seqs),
                                   ["score", str(fa), "--url", url, "-o", str(tmp / "url.tsv")], ort_records,
                                   args.repeat))
            finally:
                if server is not None:
                    server.stop()
        rows.append(paired(f"`scan`, stride 1, {args.scan_bp:,} bp -> bedGraph (wall)", "bp/s", n_win,
                           ["scan", str(lfa), "--local", "--model", str(model), "--device", "cpu",
                            "--bedgraph", str(tmp / "scan.bedGraph")], ort_windows, args.repeat))

    print(f"Scoring at scale: {machine_line()}; providers {predictor.providers}, medians of {args.repeat}\n")
    print("| path | rate | in-process ONNX Runtime, same sequences | ratio (median of paired runs) |")
    print("| --- | --- | --- | --- |")
    for name, rate, unit, ref, ratio in rows:
        print(f"| {name} | {rate:,.0f} {unit} | {ref:,.0f} seq/s | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
