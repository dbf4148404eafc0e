"""The measurement behind the predictor's fixed ONNX Runtime settings (serving/predictor.py, docs/performance.md
"ONNX Runtime settings"): the predictor's settings and their alternatives against ONNX Runtime's defaults, timed
in interleaved rounds in one process (serving.tuning.time_interleaved), medians in sequences/s.

    python -m benchmarks.ort_settings [--model models/ctcf] [--rounds 9] [--threads N]

Not part of `python -m benchmarks`. Without an exported model it exports untrained weights into runs/bench (speed does
not depend on the weights).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

BATCHES = (1, 1000, 4096)


def configurations(model: Path, threads: int) -> dict:
    """name -> x -> outputs: ONNX Runtime's defaults (with and without spinning), the predictor and its alternatives."""
    import onnxruntime as ort

    from serving.predictor import Predictor, Settings

    def ort_session(spinning: bool):
        opts = ort.SessionOptions()
        if not spinning:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        s = ort.InferenceSession(str(model / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        return lambda x: s.run(["prob", "logit"], {"dna": x})

    out = {"ONNX Runtime defaults (one run per batch)": ort_session(True),
           "ONNX Runtime defaults, spinning off": ort_session(False)}
    settings = [Settings(threads)] + [Settings(threads, True, chunk) for chunk in (192, 256, 1024)]
    if threads > 1:
        settings += [Settings(threads, False, chunk) for chunk in (256, 1024, 4096)] + [Settings(1)]
    for s in settings:
        p = Predictor(model, device="cpu", verify=False, settings=s)
        out[("**predictor: " + s.name + "**") if s == Settings(threads) else s.name] = p.predict_onehot
    return out


def main(argv: list[str] | None = None) -> int:
    from serving.store import DEFAULT_MODEL_DIR

    parser = argparse.ArgumentParser(prog="python -m benchmarks.ort_settings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path(DEFAULT_MODEL_DIR), help="exported model folder")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    parser.add_argument("--threads", type=int, default=None, help="cores for the predictor (default: the cores given)")
    args = parser.parse_args(argv)
    from benchmarks.report import ROOT, say, table
    from serving.artifact import probe_inputs
    from serving.predictor import cores_given
    from serving.tuning import cpu_name, time_interleaved

    model = args.model
    if not (model / "metadata.json").is_file():
        from benchmarks.in_process import bench_model

        say(f"no exported model in {model}: exporting untrained weights into runs/bench")
        model = bench_model(ROOT / "runs" / "bench", None)
    threads = args.threads or cores_given()
    calls = configurations(model, threads)
    say(f"timing {len(calls)} configurations at batches {BATCHES}, {args.rounds} interleaved rounds")
    rates = time_interleaved(calls, probe_inputs(200, max(BATCHES)), BATCHES, args.rounds)
    base = rates["ONNX Runtime defaults (one run per batch)"]
    rows = [[name] + [f"{r[b]:,.0f} ({r[b] / base[b]:.2f}x)" for b in BATCHES] for name, r in rates.items()]
    predictor = next(k for k in rates if k.startswith("**"))
    one_session = max((k for k in rates if "intra-op threads" in k), default=None,
                      key=lambda k: sum(rates[k][b] for b in (1000, 4096)))
    print(f"CPU: {cpu_name()}, {threads} threads; sequences/s, median of {args.rounds} rounds (x ONNX Runtime's "
          f"defaults)\n")
    print(table(["configuration"] + [f"batch {b}" for b in BATCHES], rows))
    if one_session:
        gain = statistics.median(rates[predictor][b] / rates[one_session][b] for b in (1000, 4096))
        print(f"\nPython threads (predictor) / the best one-session setting ({one_session}) at batch 1000 and "
              f"4096: {', '.join(f'{rates[predictor][b] / rates[one_session][b]:.2f}x' for b in (1000, 4096))} "
              f"(median {gain:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
