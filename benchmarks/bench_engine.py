"""Shared-computation engine benchmark (issue 24.8): the scan graph and the incremental substitutions against the
per-window predictor on the same windows and mutants, in the same run; whole commands with their start-up taken off;
peak RSS at two region sizes 10x apart; the hg38 projection at stride 1; `variants --all-snvs` in SNVs/s against the
per-window predictor's windows/s, and its projection for every SNV of chr21.

    python -m benchmarks.bench_engine [--quick] [--model models/ctcf] [--work DIR] [--keep] [--repeat N]
        [--write FILE]   (default: benchmarks/RESULTS-engine.md, except with --quick)

In-process rows time serving.engine.ScanEngine.scan_codes and serving.scoring.mutagenesis.mutagenesis_codes against
the same calls made window by window (the predictor seen without its model folder), alternating, medians of the
rounds. Command rows run `python -m serving ...` in their own processes on a model folder with the engine files and
on a copy without them (what an old export is), alternating; start-up (the same command on a tiny input) is
subtracted. `python -m benchmarks` runs this as its `engine` section.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_genome import measured, random_letters, write_genome
from benchmarks.report import ROOT, TARGET_ROWS, fmt, machine_line, say, table, target

HG38_BP = 3_100_000_000
CHR21_ACGT = 40_088_623  # A/C/G/T bases of hg38's chr21: x3 SNVs (`variants --all-snvs --chroms chr21`)
RESULTS = ROOT / "benchmarks" / "RESULTS-engine.md"
ISM_RECORDS = 1500
OWN_TARGETS: list[tuple] = []  # this section's rows of the report's Targets table (for RESULTS-engine.md)


class WindowByWindow:
    """The predictor without its model folder: scoring then sends every window (every mutant) to it whole."""

    prefers_strings = False

    def __init__(self, predictor):
        self.predictor, self.length, self.alphabet = predictor, predictor.length, predictor.alphabet

    def predict_onehot(self, x, reverse_complement_average=False):
        return self.predictor.predict_onehot(x, reverse_complement_average)


def without_engines(model: Path, dest: Path) -> Path:
    """A copy of the model folder without scan.onnx and layers.npz (metadata rewritten): an export made before the
    engines existed, which scores window by window."""
    from serving.artifact import METADATA_FILE, write_metadata

    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(model, dest)
    meta = json.loads((dest / METADATA_FILE).read_text())
    for key in ("scan_graph", "layers"):
        (dest / meta.pop(key)["file"]).unlink()
    meta.pop("files")
    write_metadata(dest, meta)
    return dest


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process's threads, fn())."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def ratio_cells(fast: list[float], slow: list[float], fast_cpu: list[float], slow_cpu: list[float], unit: str
                ) -> list[str]:
    """Table cells: both rates (wall), the wall ratio and the CPU-time ratio, from per-round rates."""
    med = statistics.median
    return [f"{fmt(med(fast))} {unit}", f"{fmt(med(slow))} {unit}", f"{med(fast) / med(slow):.2f}",
            f"{med(fast_cpu) / med(slow_cpu):.2f}"]


def scaled(got: np.ndarray, want: np.ndarray) -> float:
    want = np.asarray(want, np.float64)
    return float((np.abs(np.asarray(got, np.float64) - want) / np.maximum(1.0, np.abs(want))).max())


def in_process_rows(predictor, engine, rounds: int, quick: bool) -> list[list]:
    """Windows/s at strides 1, 10, 50 and substitutions/s, engine vs window by window (same inputs, alternating)."""
    from serving.dna import codes_to_onehot
    from serving.scoring.mutagenesis import mutagenesis_codes
    from serving.scoring.scan import scan_onehot

    rng = np.random.default_rng(0)
    bp = 200_000 if quick else 1_000_000
    codes = rng.integers(0, 4, bp).astype(np.uint8)
    per_window = WindowByWindow(predictor)
    rows = []
    for stride in (1, 10, 50):
        rates: list[list[float]] = [[], [], [], []]
        diff = 0.0
        for _ in range(rounds):
            t_fast, c_fast, (_, z_fast) = timed(lambda: engine.scan_codes(codes, stride))
            t_slow, c_slow, (_, z_slow) = timed(lambda: scan_onehot(per_window, codes_to_onehot(codes), stride))
            for i, secs in enumerate((t_fast, t_slow, c_fast, c_slow)):
                rates[i].append(len(z_fast) / secs)
            diff = max(diff, scaled(z_fast, z_slow))
        rows.append([f"scan, stride {stride}, {bp:,} bp ({len(z_fast):,} windows)", *ratio_cells(*rates, "windows/s"),
                     f"{diff:.1e}"])
    n = 32 if quick else 128
    records = rng.integers(0, 4, (n, predictor.length)).astype(np.uint8)
    rates, diff = [[], [], [], []], 0.0
    subs = 3 * records.size
    for _ in range(rounds):
        t_fast, c_fast, (d_fast, ref) = timed(lambda: mutagenesis_codes(predictor, records))
        t_slow, c_slow, (d_slow, _) = timed(lambda: mutagenesis_codes(per_window, records))
        for i, secs in enumerate((t_fast, t_slow, c_fast, c_slow)):
            rates[i].append(subs / secs)
        diff = max(diff, scaled(ref[:, None, None] + d_fast, ref[:, None, None] + d_slow))
    rows.append([f"saturation mutagenesis, {n} records of {predictor.length} bp",
                 *ratio_cells(*rates, "substitutions/s"), f"{diff:.1e}"])
    return rows


def command_rate(args: list[str], tiny: list[str], units: int) -> tuple[float, float]:
    """(units per wall second, units per CPU second) of `python -m serving ARGS` with its start-up taken off: the same
    command on a tiny input (`tiny`), timed right after."""
    secs, _, cpu = measured(args)
    start, _, start_cpu = measured(tiny)
    return units / max(secs - start, 1e-3), units / max(cpu - start_cpu, 1e-3)


def command_rows(model: Path, old: Path, work: Path, rounds: int, quick: bool) -> tuple[list[list], dict]:
    """scan --genome --stride 1 --bigwig and mutagenesis --fasta (ISM_RECORDS records): engine vs old folder."""
    from serving.dna import random_dna
    from serving.fasta import write_fasta

    bp = 400_000 if quick else 2_000_000
    genome = write_genome(work / "genome.fa", {"chr1": random_letters(bp, seed=1)})
    tiny_genome = write_genome(work / "tiny.fa", {"chr1": random_letters(1_000, seed=2)})
    n_records = 300 if quick else ISM_RECORDS
    fasta, tiny_fasta = work / "ism.fa", work / "one.fa"
    write_fasta([(f"r{i}", s) for i, s in enumerate(random_dna(n_records, 200, seed=3))], fasta)
    write_fasta([("r0", random_dna(1, 200, seed=4)[0])], tiny_fasta)
    rates: dict[str, list[list[float]]] = {}
    for _ in range(rounds):
        for label, folder in (("engine", model), ("per-window", old)):
            base = ["--model", str(folder), "--device", "cpu"]
            scan = ["scan", "--genome", "{g}", "--stride", "1", "--bigwig", str(work / f"{label}.bw"), *base]
            wall, cpu = command_rate([a.replace("{g}", str(genome)) for a in scan],
                                     [a.replace("{g}", str(tiny_genome)) for a in scan], bp - 199)
            rates.setdefault(f"scan {label}", [[], []])
            rates[f"scan {label}"][0].append(wall)
            rates[f"scan {label}"][1].append(cpu)
            ism = ["mutagenesis", "--fasta", "{f}", "-o", str(work / f"{label}.tsv"), *base]
            wall, cpu = command_rate([a.replace("{f}", str(fasta)) for a in ism],
                                     [a.replace("{f}", str(tiny_fasta)) for a in ism], 600 * n_records)
            rates.setdefault(f"ism {label}", [[], []])
            rates[f"ism {label}"][0].append(wall)
            rates[f"ism {label}"][1].append(cpu)
    med = {k: statistics.median(v[0]) for k, v in rates.items()}
    med.update({f"{k} cpu": statistics.median(v[1]) for k, v in rates.items()})
    rows = []
    for key, what, unit, goal in (("scan", f"`scan --genome` stride 1 -> bigWig, {bp:,} bp", "windows/s", 5.0),
                                  ("ism", f"`mutagenesis --fasta`, {n_records:,} records -> TSV", "substitutions/s",
                                   5.0)):
        fast, slow = rates[f"{key} engine"], rates[f"{key} per-window"]
        cells = ratio_cells(fast[0], slow[0], fast[1], slow[1], unit)
        rows.append([what + " (start-up taken off)", *cells, ""])
        target(f"{what}, engine / per-window, wall (start-up off)", f">= {goal:g}x", float(cells[2]), goal)
        target(f"{what}, engine / per-window, per CPU second", f">= {goal:g}x", float(cells[3]), goal,
               note="the figure to trust when the load average is above the core count")
    return rows, med


def all_snvs_rows(model: Path, old: Path, work: Path, rounds: int, quick: bool, med: dict) -> list[list]:
    """`variants --all-snvs` to .tsv.gz on a random chromosome, engine vs the folder without the engine files
    (alternating, start-up taken off), in SNVs/s; the target against the per-window predictor's windows/s (`scan
    --genome` on that folder, command_rows' med) and the projection for every SNV of chr21."""
    bp = 60_000 if quick else 400_000
    genome = write_genome(work / "snvs.fa", {"chr1": random_letters(bp, seed=5)})
    tiny = write_genome(work / "snvs-tiny.fa", {"chr1": random_letters(1_000, seed=6)})
    snvs = 3 * (bp - 199)  # every position whose centred 200 bp window fits; random letters: no N
    rates: dict[str, list[list[float]]] = {"engine": [[], []], "per-window": [[], []]}
    peak = 0.0
    for _ in range(rounds):
        for label, folder in (("engine", model), ("per-window", old)):
            args = ["variants", "--genome", "{g}", "--all-snvs", "--chroms", "chr1", "-o",
                    str(work / f"snvs-{label}.tsv.gz"), "--model", str(folder), "--device", "cpu"]
            secs, rss, cpu = measured([a.replace("{g}", str(genome)) for a in args])
            start, _, start_cpu = measured([a.replace("{g}", str(tiny)) for a in args])
            rates[label][0].append(snvs / max(secs - start, 1e-3))
            rates[label][1].append(snvs / max(cpu - start_cpu, 1e-3))
            peak = max(peak, rss) if label == "engine" else peak
    fast, slow = rates["engine"], rates["per-window"]
    cells = ratio_cells(fast[0], slow[0], fast[1], slow[1], "SNVs/s")
    what = f"`variants --all-snvs` -> .tsv.gz, {bp:,} bp ({snvs:,} SNVs)"
    wall, cpu = statistics.median(fast[0]), statistics.median(fast[1])
    per_window, per_window_cpu = med["scan per-window"], med["scan per-window cpu"]
    target("`variants --all-snvs` SNVs/s / the per-window predictor's windows/s (`scan --genome`, old folder), wall",
           ">= 5x", wall / per_window, 5.0)
    target("`variants --all-snvs` SNVs/s / the per-window predictor's windows/s, per CPU second", ">= 5x",
           cpu / per_window_cpu, 5.0, note="the figure to trust when the load average is above the core count")
    hours = 3 * CHR21_ACGT / wall / 3600
    return [[what + " (start-up taken off)", *cells, ""],
            ["`variants --all-snvs` (engine) SNVs/s against the per-window predictor's windows/s (`scan --genome`)",
             f"{fmt(wall)} SNVs/s", f"{fmt(per_window)} windows/s", f"{wall / per_window:.2f}",
             f"{cpu / per_window_cpu:.2f}", ""],
            [f"`variants --all-snvs` (engine), {bp:,} bp", f"{peak:,.0f} MiB peak RSS", "", "", "", ""],
            [f"every SNV of chr21 ({3 * CHR21_ACGT:,} SNVs) -> .tsv.gz, projected from the command's rate",
             f"{hours:.1f} h", f"{3 * CHR21_ACGT / statistics.median(slow[0]) / 3600:.1f} h", "", "", ""]]


def rss_rows(model: Path, work: Path, quick: bool) -> list[list]:
    """Peak RSS of the engine's `scan --genome --stride 1 --bigwig` on two genomes 10x apart."""
    small = 200_000 if quick else 400_000
    peaks = {}
    for bp in (small, 10 * small):
        genome = write_genome(work / f"rss{bp}.fa", {"chr1": random_letters(bp, seed=bp)})
        _, peaks[bp], _ = measured(["scan", "--genome", str(genome), "--stride", "1", "--bigwig",
                                    str(work / "rss.bw"), "--model", str(model), "--device", "cpu"])
    growth = peaks[10 * small] - peaks[small]
    target(f"`scan --genome` engine peak RSS, {10 * small:,} bp - {small:,} bp", "<= +150 MiB", growth, 150.0,
           unit=" MiB", lower_is_better=True)
    return [[f"`scan --genome` stride 1 (engine), {bp:,} bp", f"{peaks[bp]:,.0f} MiB peak RSS", "", "", "", ""]
            for bp in peaks]


def section_engine(model: Path, work: Path, quick: bool, repeat: int | None = None) -> str:
    """Run the measurements in `work`; the markdown section (targets added to the report's table)."""
    from serving.engine import ScanEngine, has_scan_graph
    from serving.predictor import Predictor

    work.mkdir(parents=True, exist_ok=True)
    first_target = len(TARGET_ROWS)
    rounds = repeat or (2 if quick else 3)
    # Always the export the current code makes, as `python -m benchmarks` measures: a folder exported by older code
    # lacks what the predictor runs today (model.block8.onnx on a CPU without AVX-512: its per-window side was ~1.4x
    # slower, and every engine ratio as much higher, on the 2-core EPYC).
    from benchmarks.in_process import bench_model

    say(f"re-exporting the weights of {model} with the current code")
    source, model = model, bench_model(work, model if (model / "model.keras").exists() else None)
    predictor = Predictor(model, device="cpu")
    assert has_scan_graph(predictor.metadata), f"{model}: the current export wrote no scan graph"
    engine = ScanEngine.from_predictor(predictor)
    old = without_engines(model, work / "old")
    load0 = os.getloadavg()[0]
    say("engine: in-process windows/s at strides 1, 10, 50 and substitutions/s")
    rows = in_process_rows(predictor, engine, rounds, quick)
    say("engine: whole commands (scan --genome, mutagenesis --fasta), engine vs per-window folder")
    cmd_rows, med = command_rows(model, old, work, rounds, quick)
    say("engine: variants --all-snvs, engine vs per-window folder")
    cmd_rows += all_snvs_rows(model, old, work, rounds, quick, med)
    say("engine: peak RSS at two genome sizes")
    rows += cmd_rows + rss_rows(model, work, quick)
    hours = HG38_BP / med["scan engine"] / 3600
    rows.append([f"hg38 ({HG38_BP / 1e9:.1f} Gb) at stride 1 -> bigWig, projected from the command's rate",
                 f"{hours:.1f} h", f"{HG38_BP / med['scan per-window'] / 3600:.1f} h", "", "", ""])
    target("hg38 at stride 1 (`scan --genome` -> bigWig), projected", "<= 0.5 h (goal)", hours, 0.5, unit=" h",
           lower_is_better=True)
    OWN_TARGETS[:] = TARGET_ROWS[first_target:]
    head = ["what", "engine", "window by window", "ratio (wall)", "ratio (CPU time)", "max scaled logit difference"]
    return (f"## Shared-computation engine ({'--quick' if quick else 'full'}; medians of {rounds} alternating rounds; "
            f"providers {engine.providers})\n\n{machine_line()}. Model: the weights of {source}, exported by "
            f"the current training/export.py ({predictor.metadata['name']}:{predictor.metadata['version']}; "
            f"CPU graph {predictor.graph}). Load average (1 min): {load0:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores.\n\n"
            "Engine: scan.onnx (serving/engine.py) and layers.npz (serving/substitutions.py) of the model folder. "
            "Window by window: the same predictor without its model folder (in-process rows), or the same command on "
            "a copy of the folder without the engine files (command rows: start-up, measured on a tiny input right "
            "after, taken off). Ratio (CPU time): rates per CPU second of the process (its threads together), what to "
            "trust when other processes share the cores. The last column: the largest difference between the two, "
            "relative to max(1, |logit|).\n\n" + table(head, rows))


def results_document(command: str, text: str) -> str:
    """RESULTS-engine.md: how it was made, the Targets table, the section."""
    return (f"# Shared-computation engine benchmark\n\nGenerated by `{command}` on {time.strftime('%Y-%m-%d %H:%M %Z')}. "
            f"What is measured and why: docs/engine.md.\n\n## Targets\n\n"
            + table(["target", "goal", "measured", "verdict"], [[t, g, m, v] for t, g, m, _, v in OWN_TARGETS])
            + f"\n\n{text}\n")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.standalone import run_section

    given = list(sys.argv[1:] if argv is None else argv)
    rest, out = list(given), None
    if "--write" in rest:
        i = rest.index("--write")
        out = Path(rest[i + 1])
        del rest[i:i + 2]
    elif "--quick" not in rest:
        out = RESULTS
    text = run_section(rest, "python -m benchmarks.bench_engine", __doc__, "smaller inputs, 2 rounds (a few minutes)",
                       "engine", section_engine)
    doc = results_document(" ".join(["python -m benchmarks.bench_engine", *given]), text)
    print(doc)
    if out is not None:
        out.write_text(doc)
        say(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
