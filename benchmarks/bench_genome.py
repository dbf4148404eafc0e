"""Genome-scale benchmark: `scan --genome` at stride 1 beside the in-process predictor on the same windows, peak RSS
at two genome sizes 10x apart, `variants --genome --vcf` on N and 10N variants, and 10 variants on a >= 1 Gb genome.

    python -m benchmarks.bench_genome [--quick] [--model models/ctcf] [--work DIR] [--keep]

Every command runs as its own process, start-up included; its peak RSS is that process's VmHWM (Linux).
--quick: genomes of 1 and 10 Mb, 10k and 100k variants (full: 2 and 20 Mb, 100k and 1M). `python -m benchmarks`
runs this as its `genome` section. Synthetic genomes are random ACGT; the 1 Gb one repeats a 1 Mb block.
"""
from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import fmt, machine_line, say, table, target, targets_table

WIDTH = 60  # FASTA line width
REF_BP = 500_000  # bp per chromosome the in-process reference runs on, before and after each timed command
BLOCK = 1_000_020  # bp of the repeated block of the 1 Gb genome (a whole number of lines)


def random_letters(n: int, seed: int) -> np.ndarray:
    """(n,) uint8 ASCII A/C/G/T, seeded."""
    return np.frombuffer(b"ACGT", np.uint8)[np.random.default_rng(seed).integers(0, 4, n, dtype=np.uint8)]


def _lines(letters: np.ndarray) -> bytes:
    full = len(letters) // WIDTH * WIDTH
    body = np.hstack([letters[:full].reshape(-1, WIDTH), np.full((full // WIDTH, 1), 10, np.uint8)]).tobytes()
    return body + (letters[full:].tobytes() + b"\n" if full < len(letters) else b"")


def write_genome(path: Path, chroms: dict[str, np.ndarray]) -> Path:
    """A FASTA of {name: letters} (60-bp lines) and its .fai, written directly (what samtools faidx would write)."""
    fai = []
    with open(path, "wb") as fh:
        for name, letters in chroms.items():
            fh.write(f">{name}\n".encode())
            fai.append(f"{name}\t{len(letters)}\t{fh.tell()}\t{WIDTH}\t{WIDTH + 1}\n")
            fh.write(_lines(letters))
    Path(str(path) + ".fai").write_text("".join(fai))
    return path


def write_big_genome(path: Path, chroms: int, chrom_bp: int, block: np.ndarray) -> Path:
    """`chroms` chromosomes of `chrom_bp` bp (a multiple of len(block)), each the block repeated; with its .fai."""
    data, fai = _lines(block), []
    with open(path, "wb") as fh:
        for c in range(chroms):
            fh.write(f">chr{c + 1}\n".encode())
            fai.append(f"chr{c + 1}\t{chrom_bp}\t{fh.tell()}\t{WIDTH}\t{WIDTH + 1}\n")
            for _ in range(chrom_bp // len(block)):
                fh.write(data)
    Path(str(path) + ".fai").write_text("".join(fai))
    return path


def write_vcf(path: Path, chroms: dict[str, np.ndarray], n: int, seed: int) -> Path:
    """n SNVs at sorted random positions of the chromosomes (REF from the sequence, ALT another base)."""
    rng = np.random.default_rng(seed)
    names = list(chroms)
    per = np.bincount(rng.integers(0, len(names), n), minlength=len(names))
    other = {65: "C", 67: "G", 71: "T", 84: "A"}
    with open(path, "w") as fh:
        fh.write("##fileformat=VCFv4.2\n" + "".join(f"##contig=<ID={c},length={len(s)}>\n" for c, s in chroms.items())
                 + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for name, k in zip(names, per):
            seq = chroms[name]
            for p in np.sort(rng.choice(len(seq), size=int(k), replace=False)):
                fh.write(f"{name}\t{p + 1}\t.\t{chr(seq[p])}\t{other[int(seq[p])]}\t.\tPASS\t.\n")
    return path


# `python -m serving` that writes its own peak RSS (VmHWM) at exit. Not ru_maxrss: a child's ru_maxrss keeps the
# RSS of the parent it was forked from (Linux carries it over exec), so it would measure this benchmark process.
HWM_RUNNER = """import atexit, os, runpy, sys
def hwm():
    with open('/proc/self/status') as fh:
        kb = next(line for line in fh if line.startswith('VmHWM')).split()[1]
    with open(os.environ['BINDCNN_BENCH_HWM'], 'w') as out:
        out.write(kb)
atexit.register(hwm)
sys.argv = ['serving'] + sys.argv[1:]
runpy.run_module('serving', run_name='__main__', alter_sys=True)
"""


def measured(args: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MiB, CPU seconds) of `python -m serving ARGS -q` in its own process, which must
    succeed (exit 0, or 3: some variants not scored)."""
    with tempfile.NamedTemporaryFile(prefix="hwm-", suffix=".txt") as hwm:
        t0, cpu0 = time.perf_counter(), _children_cpu()
        res = subprocess.run([sys.executable, "-c", HWM_RUNNER, *args, "-q"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env={**os.environ, "BINDCNN_BENCH_HWM": hwm.name})
        seconds, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        if res.returncode not in (0, 3):
            raise RuntimeError(f"python -m serving {' '.join(args)} failed ({res.returncode}): "
                               f"{res.stderr.decode(errors='replace')[-2000:]}")
        return seconds, int(Path(hwm.name).read_text()) / 1024, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def in_process_rate(predictor, chroms: dict[str, np.ndarray], max_bp: int | None = None) -> tuple[float, float]:
    """(windows per wall second, windows per CPU second) of the Predictor alone on the stride-1 windows of the
    chromosomes (the first max_bp of each when given); the one-hot is built beforehand, not timed."""
    from serving.dna import encode_one
    from serving.scoring.scan import windows

    seconds = cpu = 0.0
    total = 0
    for letters in chroms.values():
        view = windows(encode_one(letters[:max_bp].tobytes().decode()), predictor.length)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(view), 4096):
            predictor.predict_onehot(np.ascontiguousarray(view[i : i + 4096]))
        seconds, cpu = seconds + time.perf_counter() - t0, cpu + time.process_time() - c0
        total += len(view)
    return total / seconds, total / cpu


def section_genome(model: Path, work: Path, quick: bool, repeat: int | None = None) -> str:
    """Run the measurements in `work` and return the markdown section (targets added to the report's table)."""
    from serving.predictor import Predictor
    from serving.scoring.bigwig import ZOOM_MAX_INTERVALS

    work.mkdir(parents=True, exist_ok=True)
    repeat = repeat or (1 if quick else 3)
    small_bp, n_var = (1_000_000, 10_000) if quick else (2_000_000, 100_000)
    base = ["--model", str(model), "--device", "cpu"]
    predictor = Predictor(model, device="cpu")
    genomes = {}
    for label, bp in (("small", small_bp), ("large", 10 * small_bp)):
        chroms = {f"chr{i + 1}": random_letters(bp // 2, seed=i + bp) for i in range(2)}
        genomes[label] = (write_genome(work / f"{label}.fa", chroms), chroms)
    say(f"genome: scan --genome at stride 1 on {small_bp:,} and {10 * small_bp:,} bp (2 chromosomes each)")
    measured(["scan", "--genome", str(genomes["small"][0]), "--chroms", "chr1", "--stride", "50",
              "--bigwig", str(work / "warm.bw"), *base])  # warm-up (file caches, the first runs)
    rows, rss = [], {}
    for label in ("small", "large"):
        path, chroms = genomes[label]
        n_win = sum(len(c) - predictor.length + 1 for c in chroms.values())
        ratios, cpu_ratios, rates, refs, peaks = [], [], [], [], []
        for _ in range(repeat):  # the reference brackets each run (before and after): the machine may be shared
            before = in_process_rate(predictor, chroms, REF_BP)
            secs, peak, cpu = measured(["scan", "--genome", str(path), "--stride", "1", "--bigwig",
                                        str(work / f"{label}.bw"), *base])
            after = in_process_rate(predictor, chroms, REF_BP)
            ref, ref_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
            ratios.append(n_win / secs / ref)
            cpu_ratios.append(n_win / cpu / ref_cpu)
            rates.append(n_win / secs)
            refs.append(ref)
            peaks.append(peak)
        rss[label] = max(peaks)
        zooms = "with" if n_win <= ZOOM_MAX_INTERVALS else "without"
        rows.append([f"`scan --genome` stride 1 -> bigWig ({zooms} zoom levels), {sum(map(len, chroms.values())):,} "
                     "bp (incl. start-up)", f"{fmt(statistics.median(rates))} bp/s",
                     f"{fmt(statistics.median(refs))} windows/s", f"{statistics.median(ratios):.2f}",
                     f"{statistics.median(cpu_ratios):.2f}", f"{rss[label]:,.0f} MiB"])
    scan_ratio = float(rows[-1][3])
    target("`scan --genome` stride 1 / in-process predictor, wall bp/s", ">= 0.8", scan_ratio, 0.8)
    target("`scan --genome` stride 1 / in-process predictor, per CPU second", ">= 0.8", float(rows[-1][4]), 0.8)
    target("`scan --genome` peak RSS, 10x genome / 1x", "<= 1.3x", rss["large"] / rss["small"], 1.3,
           lower_is_better=True)

    say(f"genome: variants --genome --vcf on {n_var:,} and {10 * n_var:,} SNVs")
    vrss = {}
    path, chroms = genomes["large"]
    for n in (n_var, 10 * n_var):
        vcf = write_vcf(work / f"v{n}.vcf", chroms, n, seed=n)
        secs, peak, _ = measured(["variants", "--genome", str(path), "--vcf", str(vcf), "-o",
                                  str(work / "eff.tsv"), *base])
        vrss[n] = peak
        rows.append([f"`variants --genome --vcf`, {n:,} SNVs -> TSV (incl. start-up)",
                     f"{fmt(n / secs)} variants/s", "", "", "", f"{peak:,.0f} MiB"])
    target(f"`variants` peak RSS, {10 * n_var:,} / {n_var:,} variants", "<= 1.3x", vrss[10 * n_var] / vrss[n_var],
           1.3, lower_is_better=True)

    say("genome: 10 variants on a 1 Gb genome (4 x 250 Mb; .fai present)")
    block = random_letters(BLOCK, seed=99)
    big = write_big_genome(work / "big.fa", 4, 250 * BLOCK, block)
    rng = np.random.default_rng(10)  # 10 SNVs spread over the 4 chromosomes; REF = the block's base there
    spots = sorted((int(c), int(p)) for c, p in zip(rng.integers(1, 5, 10), rng.integers(0, 250 * BLOCK, 10)))
    vcf = work / "v10.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "".join(
        f"chr{c}\t{p + 1}\t.\t{chr(block[p % BLOCK])}\t{'A' if block[p % BLOCK] != 65 else 'C'}\t.\tPASS\t.\n"
        for c, p in spots))
    times = [measured(["variants", "--genome", str(big), "--vcf", str(vcf), "-o", str(work / "e10.tsv"), *base])
             for _ in range(repeat)]
    secs = statistics.median(t[0] for t in times)
    rows.append([f"`variants --genome --vcf`, 10 SNVs, {4 * 250 * BLOCK:,} bp genome (incl. start-up)",
                 f"{secs:.2f} s", "", "", "", f"{max(t[1] for t in times):,.0f} MiB"])
    target("`variants`, 10 variants on a 1 Gb genome", "<= 5 s (no whole-genome read)", secs, 5.0, unit=" s",
           lower_is_better=True)
    if not quick:
        os.remove(str(big) + ".fai")
        t0 = time.perf_counter()
        from serving.genome import Genome

        Genome(big, quiet=True)
        rows.append(["building the 1 Gb genome's .fai once (pyfaidx, in-process)",
                     f"{time.perf_counter() - t0:.1f} s", "", "", "", ""])
    head = ["command", "rate (wall)", "in-process predictor (wall)", "ratio (wall)", "ratio (CPU time)",
            "peak RSS"]
    return (f"## Genome scale ({'--quick' if quick else 'full'}; medians of {repeat}; providers "
            f"{predictor.providers})\n\nIn-process predictor: `Predictor.predict_onehot` alone on the stride-1 "
            f"windows of the first {REF_BP:,} bp of each chromosome of the same genome (one-hot built beforehand), "
            "timed just before and just after each command and averaged, as the machine may be shared. The CPU-time "
            "ratio compares windows per CPU second (the command's user + system time against this process's) and "
            "is what to trust when the load average is above the core count. Peak RSS: the command's own VmHWM. "
            f"Load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n\n"
            + table(head, rows))


def main(argv: list[str] | None = None) -> int:
    from benchmarks.standalone import run_section

    text = run_section(argv, "python -m benchmarks.bench_genome", __doc__, "smaller genomes and variant counts (a few minutes)", "genome", section_genome)
    print(f"{machine_line()}\n\n## Targets\n\n{targets_table()}\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
