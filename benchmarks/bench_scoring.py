"""Scoring-at-scale benchmark: `python -m serving score` (--local, --url) and `--scan` end to end, each beside
in-process ONNX Runtime on the same sequences, as ratios. Prints a markdown table.

    python -m benchmarks.bench_scoring [--model models/ctcf] [--records 100000] [--scan-bp 1000000] [--url URL]

Without --url a `bentoml serve` is started on a free loopback port (the model is registered in a private
BentoML home) and stopped at the end. The machine is shared and noisy: compare the ratios, not the rates.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_inputs(tmp: Path, records: int, scan_bp: int, seed: int = 0) -> tuple[Path, Path, list[str], str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("ACGT"))
    seqs = ["".join(r) for r in letters[rng.integers(0, 4, (records, 200))]]
    fa = tmp / "records.fa"
    fa.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
    long = "".join(letters[rng.integers(0, 4, scan_bp)])
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
    p.add_argument("--model", default="models/ctcf", help="exported model folder (default models/ctcf)")
    p.add_argument("--records", type=int, default=100_000, help="200-nt records in the FASTA (default 100000)")
    p.add_argument("--scan-bp", type=int, default=1_000_000, help="length of the scanned sequence (default 1 Mb)")
    p.add_argument("--url", help="use this running service instead of starting one")
    p.add_argument("--no-url", action="store_true", help="skip the --url row")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; medians reported (default 3)")
    args = p.parse_args(argv)

    from serving.encoding import encode
    from serving.predictor import Predictor
    from serving.scan import windows
    from serving.encoding import encode_one

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
                server, url = start_server(model, tmp)
            try:
                rows.append(paired("`score --url`, same FASTA (1000 per request, 4 in flight)", "seq/s", len(seqs),
                                   ["score", str(fa), "--url", url, "-o", str(tmp / "url.tsv")], ort_records,
                                   args.repeat))
            finally:
                if server is not None:
                    server.stop()
        rows.append(paired(f"`score --scan`, stride 1, {args.scan_bp:,} bp -> bedGraph (wall)", "bp/s", n_win,
                           ["score", str(lfa), "--scan", "--model", str(model), "--device", "cpu",
                            "--bedgraph", str(tmp / "scan.bedGraph")], ort_windows, args.repeat))

    print(f"Scoring at scale: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"providers {predictor.providers}, medians of {args.repeat}\n")
    print("| path | rate | in-process ONNX Runtime, same sequences | ratio (median of paired runs) |")
    print("| --- | --- | --- | --- |")
    for name, rate, unit, ref, ratio in rows:
        print(f"| {name} | {rate:,.0f} {unit} | {ref:,.0f} seq/s | {ratio:.2f} |")
    return 0


def start_server(model: Path, tmp: Path):
    """Register `model` in a private BentoML home and start `bentoml serve` on a free loopback port."""
    os.environ["BENTOML_HOME"] = str(tmp / "bentoml")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    from serving.store import register
    from tests.server import Server

    tag = register(model)
    server = Server(env={"BINDCNN_MODEL": tag, "BENTOML_HOME": os.environ["BENTOML_HOME"]}).start()
    return server, server.url


if __name__ == "__main__":
    sys.exit(main())
