"""Run sizes for the predictor's Python-thread plans, measured side by side: each plan times batches of 1000 and 4096
in turn, round after round, so a load that drifts falls on all of them (serving/calibration.py chose its candidates
from this).

    python -m benchmarks.plans [--chunks 128,192,256] [--rounds 15] [--model models/ctcf]

Prints the median sequences/s of each plan at each batch size. Not part of `python -m benchmarks`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

BATCHES = (1000, 4096)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plans", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", default="128,192,256", help="sequences per run to compare (default 128,192,256)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds over all plans (default 15)")
    parser.add_argument("--threads", type=int, default=2, help="Python threads, one session each run (default 2)")
    parser.add_argument("--model", default="models/ctcf", help="exported model folder (default models/ctcf)")
    args = parser.parse_args(argv)
    model = Path(args.model)
    if not (model / "metadata.json").exists():
        print(f"no exported model in {model}: run `make train` or pass --model", file=sys.stderr)
        return 2
    from serving.program import start_program

    start_program()
    from serving.artifact import probe_inputs
    from serving.runner import Plan, Runner

    name = json.loads((model / "metadata.json").read_text())["input_name"]
    x = probe_inputs(json.loads((model / "metadata.json").read_text())["sequence_length"], max(BATCHES))
    runners = {int(c): Runner(model, Plan(options="nospin", parallel=True, threads=args.threads, chunk=int(c),
                                          small="single"), name) for c in args.chunks.split(",")}
    for runner in runners.values():  # warm-up: arenas and pool threads
        runner.run(x)
    rates: dict[tuple[int, int], list[float]] = {(c, b): [] for c in runners for b in BATCHES}
    for r in range(args.rounds):
        for chunk, runner in runners.items():
            for batch in BATCHES:
                calls, xb = max(1, 8192 // batch), x[:batch]
                t0 = time.perf_counter()
                for _ in range(calls):
                    runner.run(xb)
                rates[(chunk, batch)].append(calls * batch / (time.perf_counter() - t0))
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, end="\r")
    print(f"parallel x{args.threads}, nospin, median of {args.rounds} rounds (sequences/s)")
    for chunk in runners:
        print(f"runs of {chunk}: " + ", ".join(f"batch {b}: {statistics.median(rates[(chunk, b)]):,.0f}"
                                              for b in BATCHES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
