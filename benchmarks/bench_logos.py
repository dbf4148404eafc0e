"""Logo drawing time (the /saliency_logo and /mutagenesis_logo figures): the fast renderer against logomaker,
and the ISM figure against the ISM numbers, warm (after warm_up(), as in a served worker). No server.

    python -m benchmarks.bench_logos [--quick] [--length 200]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time

import numpy as np

TARGET_S = 1.0  # a 200-position logo "well under a second" in a warm worker


def _median_seconds(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(length: int = 200, reps: int = 5) -> dict[str, float]:
    """Median seconds per figure of `length` positions: fast logo, logomaker logo, ISM figure; and warm-up."""
    from serving import plots
    from serving.dna import random_dna
    from serving.scoring.mutagenesis import plot_mutagenesis

    rng = np.random.default_rng(0)
    scores = rng.normal(size=(length, 4)) * 0.1
    delta = rng.normal(size=(length, 4)).astype(np.float32)
    seq = random_dna(1, length)[0]
    t = time.perf_counter()
    plots.warm_up()
    out = {"warm_up": time.perf_counter() - t}
    out["fast"] = _median_seconds(lambda: plots.plot_logo(scores, io.BytesIO()), reps)
    out["logomaker"] = _median_seconds(lambda: plots.plot_logo(scores, io.BytesIO(), engine="logomaker"),
                                       max(2, reps // 2))
    out["ism_figure"] = _median_seconds(lambda: plot_mutagenesis(delta, seq, io.BytesIO()), reps)
    return out


def section_logos(quick: bool = False, length: int = 200) -> str:
    """Markdown table of measure(), with verdicts computed from this run."""
    r = measure(length, reps=3 if quick else 7)
    rows = [("warm-up (once per worker: matplotlib, font, letter outlines)", r["warm_up"], ""),
            (f"saliency-style logo, {length} positions, fast renderer", r["fast"],
             "met" if r["fast"] < TARGET_S else f"missed by {r['fast'] - TARGET_S:.2f} s"),
            (f"same logo with logomaker (the notebook's)", r["logomaker"], f"fast is {r['logomaker'] / r['fast']:.0f}x"),
            (f"ISM figure (importance logo + heat map), {length} positions", r["ism_figure"],
             "met" if r["ism_figure"] < TARGET_S else f"missed by {r['ism_figure'] - TARGET_S:.2f} s")]
    lines = [f"## Logos (target: < {TARGET_S:.0f} s per {length}-position figure in a warm worker)", "",
             "| figure | median s | verdict |", "| --- | --- | --- |"]
    lines += [f"| {name} | {sec:.3f} | {verdict} |" for name, sec, verdict in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_logos", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--length", type=int, default=200, help="positions per figure (default 200)")
    args = p.parse_args(argv)
    from benchmarks.report import machine_line

    print(f"machine: {machine_line()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(section_logos(args.quick, args.length))
    return 0


if __name__ == "__main__":
    sys.exit(main())
