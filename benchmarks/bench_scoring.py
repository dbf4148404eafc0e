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


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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
        ort_s = median_time(lambda: predictor.predict_onehot(x), args.repeat)
        ort_rate = len(seqs) / ort_s

        local_s = statistics.median(cli(["score", str(fa), "--local", "--device", "cpu", "--model", str(model),
                                         "-o", str(tmp / "local.tsv")]) for _ in range(args.repeat))
        rows.append((f"`score --local`, {len(seqs):,} records (wall, incl. start-up)", len(seqs) / local_s,
                     "seq/s", ort_rate))

        if not args.no_url:
            server = None
            url = args.url
            if url is None:
                server, url = start_server(model, tmp)
            try:
                url_s = statistics.median(cli(["score", str(fa), "--url", url, "-o", str(tmp / "url.tsv")])
                                          for _ in range(args.repeat))
                rows.append((f"`score --url`, same FASTA (1000 per request, 4 in flight)", len(seqs) / url_s,
                             "seq/s", ort_rate))
            finally:
                if server is not None:
                    server.stop()

        n_win = args.scan_bp - predictor.length + 1
        xl = encode_one(long)
        view = windows(xl, predictor.length)

        def ort_windows() -> None:
            for i in range(0, n_win, 4096):
                predictor.predict_onehot(np.ascontiguousarray(view[i : i + 4096]))

        scan_ort_s = median_time(ort_windows, args.repeat)
        scan_s = statistics.median(cli(["score", str(lfa), "--scan", "--model", str(model), "--device", "cpu",
                                        "--bedgraph", str(tmp / "scan.bedGraph")]) for _ in range(args.repeat))
        rows.append((f"`score --scan`, stride 1, {args.scan_bp:,} bp -> bedGraph (wall)", args.scan_bp / scan_s,
                     "bp/s", n_win / scan_ort_s))

    print(f"Scoring at scale: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"providers {predictor.providers}, medians of {args.repeat}\n")
    print("| path | rate | in-process ONNX Runtime, same sequences (seq/s) | ratio |")
    print("| --- | --- | --- | --- |")
    for name, rate, unit, ref in rows:
        print(f"| {name} | {rate:,.0f} {unit} | {ref:,.0f} | {rate / ref:.2f} |")
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
