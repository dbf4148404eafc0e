"""The whole benchmark suite (`python -m benchmarks`, `make bench`): model throughput vs TensorFlow, encoding, HTTP,
batching under load, start-up, scanning, training, GPU, genome scale, the shared-computation engine; prints markdown
tables (--write also saves them; the engine section also goes to RESULTS-engine.md beside that file).

    python -m benchmarks [--quick] [--write benchmarks/RESULTS.md] [--model models/NAME] [--skip training,...]

Not part of the test suite. Figures are medians of several runs; the machine may be shared, so compare the
ratios measured in one run. Exit code 0 when the suite ran (targets missed are reported, not errors), 1 on failure.
"""
# This file only parses the options, runs the chosen sections (in_process.py: 1-2, http_service.py: 3 and 5,
# batching.py: 4, scan_train_gpu.py: 6-8, bench_genome.py: 9, bench_engine.py: 10) and writes the report (report.py).
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks import bench_inference as bi
from benchmarks.report import NOTES, ROOT, header, machine, say
from serving.store import DEFAULT_MODEL_DIR

SECTIONS = ("inference", "encoding", "http", "transport",
            "batching", "startup", "scanning", "training", "gpu", "genome", "logos", "engine")
SERVER_SECTIONS = {"http", "transport", "batching", "startup", "scanning"}


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few repetitions and small inputs (for debugging)")
    p.add_argument("--write", type=Path, help="also write the markdown to this file (e.g. benchmarks/RESULTS.md)")
    p.add_argument("--model", type=Path, default=None,
                   help="exported model whose model.keras is re-exported with the current code "
                        f"(default: {DEFAULT_MODEL_DIR} if present, else freshly initialised weights; speed does "
                        "not depend on the weights)")
    p.add_argument("--skip", default="", help=f"comma-separated sections to leave out: {','.join(SECTIONS)}")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench", help="scratch folder (git-ignored)")
    args = p.parse_args(argv)
    args.skip = {s for s in args.skip.split(",") if s}
    if args.skip - set(SECTIONS):
        p.error(f"unknown section(s) {sorted(args.skip - set(SECTIONS))}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    skip, quick = args.skip, args.quick
    t_start = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    info = machine()

    from benchmarks.in_process import bench_model, section_encoding, section_inference

    default = ROOT / DEFAULT_MODEL_DIR
    source = args.model or (default if (default / "model.keras").exists() else None)
    say(f"exporting the benchmark model ({'from ' + str(source) if source else 'untrained'}) to {work}/models/bench")
    model = bench_model(work, source)
    prep = bi.subprocess_json(["--engine", "prepare", "--model", str(model), "--work", str(work)])
    parts: list[str] = []
    model_rate = None
    if "inference" not in skip:
        say("1. in-process inference (each engine in its own process)")
        gflops = bi.subprocess_json(["--engine", "peak", "--model", str(model)])["gflops"]
        text, res = section_inference(model, work, quick, gflops, prep["flops"], info["mhz"])
        parts.append(text)
        model_rate = res["median"]["ort"]["1000"]
    if model_rate is None:  # a quick stand-in when section 1 is skipped
        model_rate = statistics.median(bi.subprocess_json(
            ["--engine", "ort", "--model", str(model), "--batches", "1000", "--reps", "3"])["rates"]["1000"])
    if "encoding" not in skip:
        say("2. encoding")
        parts.append(section_encoding(model, work, quick, model_rate))

    server = None
    if SERVER_SECTIONS - skip:
        from benchmarks.batching import section_batching
        from benchmarks.http_service import section_http, section_startup
        from benchmarks.scan_train_gpu import section_scanning
        from benchmarks.server import start_server

        say("starting bentoml serve (serving.service.launch.Server)")
        server, ready_s = start_server(model, work / "bentoml")
    try:
        if "http" not in skip:
            say("3. HTTP")
            parts.append(section_http(server.url, model, quick, model_rate))
        if "transport" not in skip:
            from benchmarks.transport import section_transport

            say("3b. HTTP with requests in flight, and `score` as a whole command")
            parts.append(section_transport(server, model, work, quick))
        if "batching" not in skip:
            say("4. batching under load")
            parts.append(section_batching(server, model, work, quick))
        if "startup" not in skip:
            say("5. start-up")
            parts.append(section_startup(server, ready_s, model))
        if "scanning" not in skip:
            say("6. scanning")
            parts.append(section_scanning(model, server.url, work, quick))
    finally:
        if server is not None:
            server.stop()

    from benchmarks.scan_train_gpu import section_gpu, section_training

    if "training" not in skip:
        say("7. training")
        parts.append(section_training(quick))
    if "gpu" not in skip:
        parts.append(section_gpu(model, work, quick))
    if "logos" not in skip:
        from benchmarks.bench_logos import section_logos

        say("logos")
        parts.append(section_logos(quick))
    if "genome" not in skip:
        from benchmarks.bench_genome import section_genome

        say("9. genome scale (bench_genome.py)")
        parts.append(section_genome(model, work / "genome", quick))
    engine_text = None
    if "engine" not in skip:
        from benchmarks.bench_engine import section_engine

        say("10. shared-computation engine (bench_engine.py)")
        engine_text = section_engine(model, work / "engine", quick)
        parts.append(engine_text)

    given = argv if argv is not None else sys.argv[1:]
    command = "python -m benchmarks" + (" " + " ".join(given) if given else "")
    doc = (header(command, time.perf_counter() - t_start, quick, info, prep, source) + "\n\n"
           + "\n\n".join(parts) + "\n\n" + NOTES)
    print(doc)
    if args.write:
        args.write.write_text(doc)
        say(f"wrote {args.write}")
        if engine_text is not None:
            from benchmarks.bench_engine import results_document

            (args.write.parent / "RESULTS-engine.md").write_text(results_document(command, engine_text))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
