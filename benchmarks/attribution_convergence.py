"""How many references and integration steps expected gradients needs (issue 25.2): over a grid of references x
steps, the spread of a sequence's map over reference draws (seeds) and the completeness gap (convergence_delta),
on built-in and genome-like sequences, with the time per sequence. It is what EG_REFERENCES / EG_STEPS in
serving/attribution.py were chosen from. Not a test; CPU only (TensorFlow).

    python -m benchmarks.attribution_convergence [--model DIR] [--n 24] [--draws 3]
        [--references 10 25 50 100] [--steps 8 16 32] [--write benchmarks/RESULTS-attribution-convergence.md]

Without --model it trains a small model on a 4,000-sequence built-in set into runs/attribution_convergence/.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT, machine_line, say

GAP_GOAL = 0.05  # median completeness gap on every set, in logits
GRADIENT_BUDGET = 1000  # gradients per sequence (references x steps): ~80 CPU ms on this 2-core EPYC, so /saliency
# stays interactive (a logo well under a second, 100 sequences in seconds). A count, not a time: the choice must not
# depend on the load of a shared machine.
BOUND_SETS = ("built-in bound", "genome-like + site")  # where the maps carry a motif and their noise matters


def sequence_sets(n: int, length: int = 200, seed: int = 101) -> dict[str, tuple[np.ndarray, str]]:
    """{name: (x (n, L, 4) float32, what it is)}: the built-in set's bound and unbound sequences (a fresh set, not
    the model's training data), and genome-like windows with one sampled MA0139.1 site anywhere (real peaks' sites
    are often off the summit)."""
    from serving.dna import codes_to_onehot
    from training.datasets.background import add_repeats, genome_like
    from training.datasets.jaspar import load_jaspar, motif_probabilities
    from training.datasets.synthetic import synthetic_dataset

    ds = synthetic_dataset(max(20 * n, 1000), length, seed=seed)
    x, motif, y = ds.x["test"], ds.motif["test"], ds.y["test"][:, 0]
    bound = x[np.flatnonzero(motif[:, 0] >= 0)[:n]]
    unbound = x[np.flatnonzero(y == 0)[:n]]
    rng = np.random.default_rng(seed)
    codes = genome_like(n, length, rng)
    add_repeats(codes, rng)
    pwm = motif_probabilities(load_jaspar()[1])
    for row in codes:
        site = np.array([rng.choice(4, p=p / p.sum()) for p in pwm], np.uint8)
        start = int(rng.integers(0, length - len(site) + 1))
        row[start:start + len(site)] = site if rng.random() < 0.5 else (3 - site)[::-1]
    return {"built-in bound": (bound, "test-split instance carriers of a fresh built-in set (seed 101)"),
            "built-in unbound": (unbound, "its negatives: no planted instance (maps are mostly noise)"),
            "genome-like + site": (codes_to_onehot(codes).astype(np.float32),
                                   "genome-like background (human dinucleotides, CpG islands, repeats), one "
                                   "MA0139.1 site sampled anywhere, either strand")}


def measure(logits_fn, x: np.ndarray, references: int, steps: int, draws: int) -> dict[str, float]:
    """Maps of x (n, L, 4) from `draws` seeds -> spread (max over positions of the SD across draws / the mean
    map's peak |score|: median, p90 over sequences), gap (convergence_delta: median, p90), and per sequence the
    wall and CPU milliseconds (medians over the draws; CPU time counts every thread and is steadier under load)."""
    from serving.attribution import expected_gradients

    maps, gaps, seconds, cpu = [], [], [], []
    for seed in range(draws):
        t, c = time.perf_counter(), time.process_time()
        hyp, delta = expected_gradients(logits_fn, x, references, steps, seed=seed)
        seconds.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        maps.append(hyp * x)
        gaps.append(delta)
    maps = np.stack(maps)  # (D, n, L, 4)
    peak = np.abs(maps.mean(axis=0)).max(axis=(1, 2))
    spread = maps.std(axis=0, ddof=1).max(axis=(1, 2)) / np.maximum(peak, 1e-12)
    gaps = np.concatenate(gaps)
    return {"spread_median": float(np.median(spread)), "spread_p90": float(np.percentile(spread, 90)),
            "gap_median": float(np.median(gaps)), "gap_p90": float(np.percentile(gaps, 90)),
            "ms_per_sequence": 1000 * float(np.median(seconds)) / len(x),
            "cpu_ms_per_sequence": 1000 * float(np.median(cpu)) / len(x)}


def small_model(work: Path) -> Path:
    """A model trained on a 4,000-sequence built-in set (seed 7, <= 40 epochs), exported to work/model."""
    from training.datasets.synthetic import write_synthetic
    from training.pipeline import train_and_export

    if not (work / "model" / "metadata.json").exists():
        data = write_synthetic(work / "synthetic.h5", n=4000, seed=7)
        train_and_export(data, "model", work, epochs=40, seed=0, register=False, verbose=False)
    return work / "model"


def study(model: Path, n: int, draws: int, references: list[int], steps: list[int]) -> str:
    """The markdown report: settings, one table per sequence set, and the cheapest setting that meets the goals."""
    from serving.artifact import read_metadata
    from serving.attribution import EG_REFERENCES, EG_STEPS, load_logits_fn, logits
    from serving.shuffle import shuffled_references

    meta = read_metadata(model)
    fn = load_logits_fn(model)
    sets = sequence_sets(n, meta["sequence_length"])
    lines = ["# Expected gradients: references x steps", "",
             f"Generated by `python -m benchmarks.attribution_convergence --model {model} --n {n} --draws {draws} "
             f"--references {' '.join(map(str, references))} --steps {' '.join(map(str, steps))}` on "
             f"{time.strftime('%Y-%m-%d')}.", "",
             f"- Machine: {machine_line()}", f"- Model: {meta['name']} version {meta['version']}, trained on "
             f"{meta.get('data', {}).get('description', 'its data')} for {meta.get('training', {}).get('epochs_run')} "
             f"epochs (test AUROC {meta.get('metrics', {}).get('test', {}).get('auroc', float('nan')):.4f}).",
             f"- Sequences: {n} per set; {draws} reference draws (seeds 0..{draws - 1}) per setting.",
             "- spread: per sequence, the largest SD across the draws at any position and base, as a fraction of "
             "the mean map's peak |score| (how much a map moves when only its random references change).",
             "- gap: convergence_delta = |sum of contributions - (logit(x) - mean logit(references))| in logits "
             "(how far the integration is from completeness; it shrinks with steps).",
             "- ms/seq: wall time per sequence of one draw (median of the draws) on this machine, shared with other "
             "work (load average below); CPU ms/seq: the process's CPU time (all threads) per sequence, steadier.",
             f"- Choice: among settings with median gap <= {GAP_GOAL} logit on every set and at most "
             f"{GRADIENT_BUDGET} gradients (references x steps) per sequence (interactive /saliency), the smallest "
             f"median spread on the sets with a site ({', '.join(BOUND_SETS)}).", ""]
    results: dict[tuple[int, int], list[dict]] = {}
    for name, (x, what) in sets.items():
        z = logits(fn, x)
        z_ref = logits(fn, shuffled_references(x, 10).reshape(-1, *x.shape[1:])).reshape(len(x), 10).mean(axis=1)
        lines += [f"## {name}", "", f"{what}; median logit {np.median(z):.2f}, median |logit - mean reference "
                  f"logit| {np.median(np.abs(z - z_ref)):.2f}.", "",
                  "| references | steps | spread median | spread p90 | gap median | gap p90 | ms/seq | CPU ms/seq |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for k in references:
            for m in steps:
                r = measure(fn, x, k, m, draws)
                results.setdefault((k, m), []).append(r)
                mark = " (default)" if (k, m) == (EG_REFERENCES, EG_STEPS) else ""
                lines.append(f"| {k}{mark} | {m} | {r['spread_median']:.1%} | {r['spread_p90']:.1%} | "
                             f"{r['gap_median']:.4f} | {r['gap_p90']:.4f} | {r['ms_per_sequence']:.1f} | "
                             f"{r['cpu_ms_per_sequence']:.1f} |")
                say(f"{name}: {k} x {m}: spread {r['spread_median']:.1%}, gap {r['gap_median']:.4f}, "
                    f"{r['ms_per_sequence']:.1f} ms/seq, {r['cpu_ms_per_sequence']:.1f} CPU ms/seq")
        lines.append("")
    ok = {(k, m): max(r["spread_median"] for r, name in zip(rs, sets) if name in BOUND_SETS)
          for (k, m), rs in results.items()
          if k * m <= GRADIENT_BUDGET and all(r["gap_median"] <= GAP_GOAL for r in rs)}
    lines += ["## Verdict", "", f"Load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
              f"on {os.cpu_count()} CPUs.", ""]
    if ok:
        k, m = min(ok, key=lambda km: (ok[km], km[0] * km[1]))
        cpu = max(r["cpu_ms_per_sequence"] for r in results[(k, m)])
        lines.append(f"Chosen: {k} references x {m} steps ({k * m} gradients per sequence, up to {cpu:.0f} CPU ms per "
                     f"sequence here; median spread at most {ok[(k, m)]:.1%} of the peak on the sets with a site). "
                     f"serving/attribution.py uses {EG_REFERENCES} x {EG_STEPS}.")
    else:
        lines.append("No setting of this grid met the gap on every set within the budget; widen the grid.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.attribution_convergence", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="an exported model folder (default: a small model trained here)")
    p.add_argument("--n", type=int, default=24, help="sequences per set (default %(default)s)")
    p.add_argument("--draws", type=int, default=3, help="reference draws (seeds) per setting (default %(default)s)")
    p.add_argument("--references", type=int, nargs="+", default=[10, 25, 50, 100])
    p.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--write", type=Path, help="also write the markdown here")
    args = p.parse_args(argv)
    if args.draws < 2:
        p.error("--draws must be at least 2 (the spread is an SD across draws)")
    from serving.attribution import quiet_tensorflow

    quiet_tensorflow()
    model = args.model or small_model(ROOT / "runs" / "attribution_convergence")
    md = study(model, args.n, args.draws, sorted(args.references), sorted(args.steps))
    print(md)
    if args.write:
        args.write.write_text(md)
        say(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
