"""`--engine ray` beside `--engine local` on the same machine: scan --genome at stride 1 -> bigWig, score --regions
and variants --vcf, each a whole process (start-up included), Ray started by the command or joined (already up).

    python -m benchmarks.bench_ray [--quick] [--model models/ctcf] [--work DIR] [--keep] [--repeat N]

The Ray engine is for many machines; on one it can only add cost: starting a local Ray (GCS, raylet, workers),
one actor pool per command whose actors each load the model once, and one round trip through Ray per work item
(the "many items" row: regions in chunks of 25). The "joined" column runs against a Ray this benchmark started
first (what a cluster, or a KubeRay RayJob, looks like).
"""
from __future__ import annotations

import filecmp
import os
import statistics
import sys
from pathlib import Path

import numpy as np

from benchmarks.bench_genome import measured, random_letters, write_genome, write_vcf
from benchmarks.report import machine_line, say, table


def write_regions(path: Path, chroms: dict[str, np.ndarray], n: int, seed: int) -> Path:
    """n BED regions of 50-500 bp at random places of the chromosomes (input order unsorted)."""
    rng = np.random.default_rng(seed)
    names = list(chroms)
    with open(path, "w") as fh:
        for i, c in enumerate(rng.integers(0, len(names), n)):
            size = len(chroms[names[c]])
            start = int(rng.integers(0, size - 600))
            fh.write(f"{names[c]}\t{start}\t{start + int(rng.integers(50, 500))}\tr{i}\n")
    return path


def section_ray(model: Path, work: Path, quick: bool, repeat: int | None = None) -> str:
    """Run the measurements in `work` and return the markdown section."""
    import ray

    work.mkdir(parents=True, exist_ok=True)
    repeat = repeat or (1 if quick else 3)
    scan_bp, n_var, n_reg = (500_000, 20_000, 50_000) if quick else (2_000_000, 200_000, 200_000)
    chroms = {f"chr{i + 1}": random_letters(scan_bp // 2, seed=7 + i) for i in range(2)}
    genome = write_genome(work / "g.fa", chroms)
    vcf = write_vcf(work / "v.vcf", chroms, n_var, seed=3)
    bed = write_regions(work / "r.bed", chroms, n_reg, seed=4)
    one = work / "one.bed"
    one.write_text("chr1\t1000\t1200\tone\n")
    base = ["--model", str(model), "--device", "cpu"]
    jobs = {  # label -> (argv without outputs, output flag, output name, what)
        "scan": (["scan", "--genome", str(genome), "--stride", "1"], "--bigwig", "bw",
                 f"`scan --genome` stride 1 -> bigWig, {scan_bp:,} bp"),
        "variants": (["variants", "--genome", str(genome), "--vcf", str(vcf)], "-o", "tsv",
                     f"`variants --genome --vcf`, {n_var:,} SNVs -> TSV"),
        "regions": (["score", "--genome", str(genome), "--regions", str(bed)], "-o", "tsv",
                    f"`score --genome --regions`, {n_reg:,} regions -> TSV"),
        "items": (["score", "--genome", str(genome), "--regions", str(bed), "--chunk", "25"], "-o", "tsv",
                  f"`score --genome --regions --chunk 25`, {n_reg:,} regions: {-(-n_reg // 25):,} work items"),
        "one": (["score", "--genome", str(genome), "--regions", str(one)], "-o", "tsv",
                "`score --genome --regions`, 1 region (the fixed cost)"),
    }
    say("ray: warm-up (imports, the model load, the first runs)")
    measured(jobs["one"][0] + ["-o", str(work / "warm.tsv"), *base])
    runs: dict[tuple[str, str], list[float]] = {}
    same = True

    def paired(label: str, mode: str, extra: list[str]) -> None:
        """`repeat` pairs of (--engine local, --engine ray + extra), alternating which goes first."""
        argv, flag, ext, _ = jobs[label]
        for r in range(repeat):
            order = [("local", []), (mode, ["--engine", "ray", *extra])]
            for engine, more in order if r % 2 == 0 else order[::-1]:
                say(f"ray: {label} {' '.join(more) or '--engine local'}")
                out = work / f"{label}-{engine}.{ext}"
                runs.setdefault((label, f"{engine}-{mode}"), []).append(
                    measured(argv + [flag, str(out), "--engine", "local", *base] if engine == "local" else
                             argv + [flag, str(out), *more, *base])[0])

    for label in jobs:
        paired(label, "starts", [])
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")  # a Ray that is already up
    try:
        address = ray.get_runtime_context().gcs_address
        for label in jobs:
            paired(label, "joins", ["--ray-address", address])
    finally:
        ray.shutdown()
    for label, (_, _, ext, _) in jobs.items():
        for mode in ("starts", "joins"):
            same &= filecmp.cmp(work / f"{label}-local.{ext}", work / f"{label}-{mode}.{ext}", shallow=False)
    rows = []
    for label, (_, _, _, what) in jobs.items():
        row = [what, f"{statistics.median(runs[label, 'local-starts'] + runs[label, 'local-joins']):.1f} s"]
        for mode in ("starts", "joins"):
            local, ray_s = runs[label, f"local-{mode}"], runs[label, f"{mode}-{mode}"]
            ratio = statistics.median(a / b for a, b in zip(local, ray_s))
            row += [f"{statistics.median(ray_s):.1f} s", f"{ratio:.2f}",
                    f"{statistics.median(b - a for a, b in zip(local, ray_s)):+.1f} s"]
        rows.append(row)
    head = ["command (wall, incl. start-up)", "--engine local", "ray, starts Ray", "local/ray", "ray - local",
            "ray, joins Ray", "local/ray", "ray - local"]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"## `--engine ray` vs `--engine local` ({'--quick' if quick else 'full'}; {repeat} pair(s) per figure; "
            f"{os.cpu_count()} cores, one machine)\n\nSame model, same inputs, CPU, each command a whole process. "
            "Each ray figure is paired with a local run just before or after it (alternating); ratios = local "
            "seconds / ray seconds (1.00 = no overhead), medians over the pairs. 'starts Ray': the command starts a "
            "local Ray and stops it; 'joins Ray': a Ray started beforehand by this benchmark, as on a cluster. "
            "Either way one actor pool serves the whole command, however many work items it has. "
            f"Outputs byte-identical to the local ones: {'yes' if same else 'NO'}. Load average at the end: {load} "
            "(the machine may be shared).\n\n" + table(head, rows))


def main(argv: list[str] | None = None) -> int:
    from benchmarks.standalone import run_section

    text = run_section(argv, "python -m benchmarks.bench_ray", __doc__, "500 kb scan, 20k variants, 50k regions (a few minutes)", "ray", section_ray)
    print(f"{machine_line()}\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
