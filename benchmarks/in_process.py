"""Sections 1-2 of the suite, everything that runs in one process with no server: the benchmark model's export,
model throughput against TensorFlow and the compute ceiling, and encoding speed against the model."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import bench_inference as bi
from benchmarks.report import ROOT, band, fmt, table, target

# ONNX Runtime's best rate as a share of the measured compute ceiling: the words section 1 uses.
CEILING_BANDS = [(0.7, "near the measured ceiling"), (0.4, "below it")]
CEILING_BELOW = "well below it"
CEILING_RULE = "near: >= 70%, below: 40-70%, well below: < 40%"


def bench_model(work: Path, source: Path | None) -> Path:
    """An export made by the current code (so model.onnx is what training.export writes today):
    re-exported from source/model.keras when given (trained weights), else a freshly initialised model."""
    out = work / "models" / "bench"
    code = (
        "import sys\n"
        "from serving.attribution import quiet_tensorflow; quiet_tensorflow()\n"
        "import keras\n"
        "from training.export import KERAS_FILE, export\n"
        "from training.model import build_model\n"
        "from benchmarks.bench_inference import onehot_batch\n"
        "src = sys.argv[2]\n"
        "keras.utils.set_random_seed(0)\n"
        "m = keras.models.load_model(src + '/' + KERAS_FILE) if src else build_model(200)\n"
        "export(m, sys.argv[1], 'bench', onehot_batch(1024, int(m.input_shape[1]), seed=1),\n"
        "       {'note': 'benchmark copy' + (' of ' + src if src else ' (untrained weights)')})\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(out), str(source or "")], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if res.returncode != 0:
        raise RuntimeError(f"exporting the benchmark model failed:\n{res.stderr[-3000:]}")
    return out


def ceiling_sentence(best: float, ceiling: float) -> str:
    """'ONNX Runtime reached X% of the measured ceiling: <words>' from this run's figures."""
    share = best / ceiling
    return (f"ONNX Runtime's best here ({fmt(best)}/s) reached **{share:.0%}** of the measured ceiling: "
            f"{band(share, CEILING_BANDS, CEILING_BELOW)} ({CEILING_RULE}).")


def section_inference(model: Path, work: Path, quick: bool, gflops: float, flops: dict, mhz: float
                      ) -> tuple[str, dict]:
    engines = ["ort", "ort-default", "ort-fixed", "ort-tf2onnx", "tf", "keras"]
    res = bi.measure(model, work, engines, rounds=1 if quick else 2, reps=2 if quick else 3,
                     seconds=0.15 if quick else 0.4)
    med = res["median"]
    batches = [str(b) for b in bi.BATCHES]
    rows = [[f"{bi.ENGINES[e]}"] + [fmt(med[e][b]) for b in batches] for e in engines]
    rows.append(["**ONNX Runtime (service) / TensorFlow**"] + [f"**{med['ort'][b] / med['tf'][b]:.2f}x**"
                                                              for b in batches])
    rows.append(["ONNX Runtime (service) / Keras predict"] + [f"{med['ort'][b] / med['keras'][b]:.1f}x"
                                                             for b in batches])
    rows.append(["ONNX Runtime defaults: direct graph / tf2onnx graph (same options)"] +
                [f"{med['ort-default'][b] / med['ort-tf2onnx'][b]:.2f}x" for b in batches])
    per_seq = flops["total"]
    ceiling = gflops * 1e9 / per_seq
    best = max(med["ort"].values())
    executed = best * flops.get("executed", per_seq) / 1e9
    text = "## 1. In-process model throughput (sequences/s, median)\n\n" + table(
        ["engine"] + [f"batch {b}" for b in batches], rows)
    text += (f"\n\nCompute ceiling: the model costs {per_seq:,} FLOP per sequence (conv "
             f"{flops.get('conv', 0):,} + dense {flops.get('dense', 0):,} + logit {flops.get('logit', 0):,}). "
             f"Peak: a numpy float32 matmul (best of 2048^2 and 3072^2 products, on the threads numpy's BLAS uses) "
             f"measured **{gflops:,.0f} GFLOP/s** in this run, so the ceiling is ~**{fmt(ceiling)} sequences/s**. "
             + ceiling_sentence(best, ceiling) +
             f" Counting what it really computes (filters padded to {flops.get('padded_filters', '?')}: "
             f"{flops.get('executed', per_seq):,} FLOP per sequence) it runs at {executed:,.0f} GFLOP/s, "
             f"{executed / gflops:.0%} of the matmul figure. (/proc/cpuinfo reports {mhz / 1000:.2f} GHz, which "
             "need not be the clock the cores run at, so no nominal peak is claimed.)")
    share = best / ceiling
    ratio1000 = med["ort"]["1000"] / med["tf"]["1000"]
    target("ONNX Runtime at batch 1000 vs TensorFlow", ">= 1x", ratio1000, 1.0,
           note=f"ONNX Runtime's best is {share:.0%} of the measured compute ceiling "
                f"({band(share, CEILING_BANDS, CEILING_BELOW)}; section 1)" if ratio1000 < 1 else "")
    target("ONNX Runtime at batch 1 vs TensorFlow", ">= 20x", med["ort"]["1"] / med["tf"]["1"], 20.0)
    text += "\n\n" + _ceiling_part(model, res, gflops, flops)
    return text, res


def _ceiling_part(model: Path, res: dict, gflops: float, flops: dict) -> str:
    """Section 1b (benchmarks/ceiling.py): the predictor's fixed settings, ORT defaults and the old fixed options
    against the ceiling, and a one-core ONNX Runtime profile of model.onnx in the predictor's run size."""
    from benchmarks.ceiling import executed_filters, profile_env, section_ceiling

    settings = res["info"]["ort"].get("settings", {})
    chunk = str(settings.get("chunk", 128))
    prof = bi.subprocess_json(["--engine", "profile", "--model", str(model), "--chunk", chunk], env=profile_env())
    filters = executed_filters(model, "model.onnx") or flops.get("padded_filters", 0)
    return section_ceiling(res["median"], res["info"], gflops, settings, prof, flops, filters)


def section_encoding(model: Path, work: Path, quick: bool, model_rate: float) -> str:
    """Encoding rates, each block timed right after a block of the model (ONNX Runtime, service options, batch
    1000) on the same sequences, so the ratio sees the same load."""
    import gzip

    from serving.dna import codes_to_onehot, encode, random_dna
    from serving.fasta import read_fasta
    from serving.predictor import Predictor
    from serving.scoring.inputs import fasta_batches
    from serving.scoring.score import prepare_block

    n = 10_000 if quick else 50_000
    seqs = random_dna(n, 200, seed=3)
    fa = work / "encoding.fa"
    fa.write_text("".join(f">r{i}\n{s[:80]}\n{s[80:160]}\n{s[160:]}\n" for i, s in enumerate(seqs)))
    fa_gz = work / "encoding.fa.gz"
    fa_gz.write_bytes(gzip.compress(fa.read_bytes(), 6))
    x = encode(seqs, 200)
    pred = Predictor(model, device="cpu")
    chunks = [seqs[i:i + 1000] for i in range(0, n, 1000)]

    def blocks(path: Path) -> None:  # what `score` does (ids, checked codes), then one-hot per chunk of 1000
        for batch in fasta_batches(path):
            ok, codes, _ = prepare_block(batch, 200, "ACGT")
            assert ok.all()
            for i in range(0, len(codes), 1000):
                codes_to_onehot(codes[i:i + 1000])

    paths = {
        "`encode`, lists of 1000 strings": lambda: [encode(c, 200) is None for c in chunks],  # each freed at once
        f"`encode`, one list of {n:,} strings": lambda: encode(seqs, 200),
        f"`read_fasta` + `encode`, {n:,} records (80-column FASTA file, one Record per sequence)":
            lambda: encode([r.sequence for r in read_fasta(fa)], 200),
        "`fasta_batches` + `prepare_block` -> codes -> one-hot (the scoring path), same file": lambda: blocks(fa),
        "same, gzip-compressed file": lambda: blocks(fa_gz),
    }
    rates = {k: [] for k in paths}
    ratios = {k: [] for k in paths}
    for _ in range(3 if quick else 5):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            for i in range(0, n, 1000):
                pred.predict_onehot(x[i:i + 1000])
            ref = n / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            fn()
            r = n / (time.perf_counter() - t0)
            rates[name].append(r)
            ratios[name].append(r / ref)
    med = {k: statistics.median(v) for k, v in ratios.items()}
    rate = {k: statistics.median(v) for k, v in rates.items()}
    rows = [[k, fmt(rate[k]), f"**{med[k]:.1f}x**", f"{rate[k] / model_rate:.1f}x"] for k in paths]
    chunked, whole, fasta, plain, gz = list(paths)
    target("Encoding (strings, 1000 per call) vs model", ">= 5x", med[chunked], 5.0)
    for key, what in ((plain, "plain"), (gz, "gzip")):
        target(f"FASTA read + encode vs model ({what})", ">= 5x", med[key], 5.0,
               note="" if med[key] >= 5 else f"{rate[key]:,.0f} records/s; the record-at-a-time reader "
                                             f"(`read_fasta`) ran at {med[fasta]:.1f}x")
    r = med[chunked]
    verdict = band(r, [(5, "the model dominates in-process scoring of strings"),
                       (1, "encoding is a visible share of in-process scoring")], "encoding is slower than the model")
    return ("## 2. Encoding: strings/FASTA -> (N, 200, 4) float32 one-hot (sequences/s, median); each block timed "
            "right after a block of the model (ONNX Runtime, service options, batch 1000) on the same sequences\n\n"
            + table(["path", "sequences/s", "x model (interleaved)", f"x section 1 (batch 1000: {fmt(model_rate)}/s)"],
                    rows)
            + f"\n\nEncoding lists of 1000 strings ran at {r:.1f}x the model's rate (it takes {1 / r:.0%} of the "
              f"model's time per sequence): {verdict} (>= 5x: the model dominates; 1-5x: a visible share; "
              f"< 1x: encoding is slower). Reading the FASTA file as blocks (serving/fasta.py, numpy over a few "
              f"MB at a time) and encoding ran at {med[plain]:.1f}x the model's rate ({med[gz]:.1f}x from gzip, "
              f"decompressed by a second thread); one Record per sequence (`read_fasta`): {med[fasta]:.1f}x.")
