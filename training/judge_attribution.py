"""`bindcnn judge --attribution`: which attribution method finds the motifs planted in the built-in set. Per seed a
fresh set and a small model; per method the per-sequence AUROC and AUPR of attribution magnitude against the planted
positions (Majdandzic, Rajesh & Koo, Genome Biology 2023), averaged over the instance carriers; a TSV and markdown.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from serving.attribution import DEFAULT_METHOD, METHODS
from serving.console import say

ISM = "ism"
JUDGED = (*METHODS, ISM)  # the gradient methods of serving.attribution, and in-silico mutagenesis
# `bindcnn judge --attribution` defaults: small sets and few epochs, so three seeds fit a few minutes on 2 cores
ATTRIBUTION_N, ATTRIBUTION_EPOCHS, ATTRIBUTION_PATIENCE, ATTRIBUTION_CARRIERS = 10_000, 20, 3, 200
TSV_COLUMNS = ("seed", "method", "auroc", "aupr", "sequences", "model_auroc", "seconds")


class KerasLogits:
    """What serving.scoring.mutagenesis asks of a predictor (length, alphabet, predict_onehot) over an in-memory
    Keras logit model, so ISM is judged on the very weights the gradients are."""

    alphabet = "ACGT"

    def __init__(self, logits_fn, length: int):
        self.logits_fn, self.length = logits_fn, length

    def predict_onehot(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """x: (N, L, 4) -> {"logit": (N,) float32} (one strand only)."""
        from serving.attribution import logits

        if reverse_complement_average:
            raise ValueError("KerasLogits scores one strand")
        return {"logit": logits(self.logits_fn, x)}


def position_magnitude(logits_fn, x: np.ndarray, method: str) -> np.ndarray:
    """x (N, L, 4) one-hot -> (N, L): each position's attribution magnitude, |score of the observed base| (the
    gradient methods' grad x input is non-zero only there; ISM: the observed base's mean-centred logit change)."""
    if method == ISM:
        from serving.dna import decode
        from serving.scoring.mutagenesis import mutagenesis_codes, reference_importance
        from serving.shuffle import onehot_codes

        delta, _ = mutagenesis_codes(KerasLogits(logits_fn, x.shape[1]), onehot_codes(x))  # (N, L, 4)
        return np.stack([np.abs(reference_importance(d, seq)).sum(axis=-1) for d, seq in zip(delta, decode(x))])
    from serving.attribution import attribute

    return np.abs(attribute(logits_fn, x, method)).sum(axis=-1)


def judge_attribution_seed(seed: int, n: int = ATTRIBUTION_N, background: str = "genome",
                           epochs: int = ATTRIBUTION_EPOCHS, patience: int = ATTRIBUTION_PATIENCE,
                           attribution_n: int = ATTRIBUTION_CARRIERS, methods: tuple[str, ...] = JUDGED) -> list[dict]:
    """One trial: training.judge.train_seed, then for each method the mean per-sequence AUROC and AUPR of
    position_magnitude against the planted positions of the first `attribution_n` test instance carriers."""
    from training.evaluate import auroc, planted_recovery
    from training.judge import train_seed

    ds, _, logit = train_seed(seed, n, background, epochs=epochs, patience=patience)
    fn = lambda xb: logit([xb], training=False)  # noqa: E731  (one function: its gradient graph is traced once)
    from serving.attribution import logits

    model_auroc = auroc(ds.y["test"][:, 0], logits(fn, ds.x["test"]))
    carriers = np.flatnonzero(ds.motif["test"][:, 0] >= 0)[:attribution_n]
    x, motif = ds.x["test"][carriers], ds.motif["test"][carriers]
    rows = []
    for method in methods:
        t0 = time.perf_counter()
        roc, pr = planted_recovery(position_magnitude(fn, x, method), motif)
        rows.append({"seed": seed, "method": method, "auroc": float(roc.mean()), "aupr": float(pr.mean()),
                     "sequences": len(roc), "model_auroc": model_auroc,
                     "seconds": round(time.perf_counter() - t0, 1)})
    return rows


def summary(rows: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """{method: {"auroc" | "aupr": (mean, sample SD over seeds)}} in the order the methods were judged."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        out[method] = {k: (float(np.mean([r[k] for r in mine])),
                           float(np.std([r[k] for r in mine], ddof=1)) if len(mine) > 1 else 0.0)
                       for k in ("auroc", "aupr")}
    return out


def best(rows: list[dict]) -> str:
    """The method with the highest mean AUROC over seeds (mean AUPR breaks a tie)."""
    s = summary(rows)
    return max(s, key=lambda m: (s[m]["auroc"][0], s[m]["aupr"][0]))


def markdown(rows: list[dict], command: str, settings: str, seconds: float, machine: str) -> str:
    """The report: how it was made, mean +- SD per method, one row per seed and method, the verdict."""
    s = summary(rows)
    seeds = sorted({r["seed"] for r in rows})
    chance = 19 / 200
    lines = ["# Attribution judged on planted motifs", "",
             f"Generated by `{command}` ({settings}) in {seconds / 60:.1f} min on {machine}.", "",
             "Per seed a fresh built-in set and a fresh model. For each test sequence that carries a planted MA0139.1 "
             "instance, each position's attribution magnitude (|grad x input| of the observed base, or for ISM the "
             "observed base's mean-centred logit change) is scored against 1 inside the instance and 0 elsewhere: "
             "AUROC and AUPR per sequence (Majdandzic, Rajesh & Koo, Genome Biology 2023), averaged over the "
             f"sequences. Chance: AUROC 0.5, AUPR ~{chance:.3f} (19 of 200 positions). Decoys and weak instances "
             "elsewhere in a sequence count as background, as for every method.", "",
             f"| method | AUROC mean +- SD ({len(seeds)} seeds) | AUPR mean +- SD |", "| --- | ---: | ---: |"]
    for method, v in s.items():
        lines.append(f"| {method} | {v['auroc'][0]:.4f} +- {v['auroc'][1]:.4f} | "
                     f"{v['aupr'][0]:.4f} +- {v['aupr'][1]:.4f} |")
    lines += ["", "| seed | method | AUROC | AUPR | sequences | model test AUROC | seconds |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['seed']} | {r['method']} | {r['auroc']:.4f} | {r['aupr']:.4f} | {r['sequences']} | "
              f"{r['model_auroc']:.4f} | {r['seconds']:g} |" for r in rows]
    lines += ["", verdict(rows)]
    return "\n".join(lines) + "\n"


def verdict(rows: list[dict]) -> str:
    """Which method came first overall, which first among those /saliency serves (serving.attribution.METHODS), on
    how many seeds it beat the runner-up (paired by seed), and whether that is DEFAULT_METHOD."""
    text = f"Highest mean AUROC: **{best(rows)}**."
    served = [r for r in rows if r["method"] in METHODS]
    if len({r["method"] for r in served}) >= 2:
        s = summary(served)
        first = best(served)
        second = max((m for m in s if m != first), key=lambda m: (s[m]["auroc"][0], s[m]["aupr"][0]))
        by_seed = {(r["seed"], r["method"]): r for r in served}
        seeds = sorted({r["seed"] for r in served})
        wins = {k: sum(by_seed[(sd, first)][k] > by_seed[(sd, second)][k] for sd in seeds) for k in ("auroc", "aupr")}
        text += (f" Among the methods /saliency serves: **{first}**, ahead of {second} on {wins['auroc']} of "
                 f"{len(seeds)} seeds in AUROC and {wins['aupr']} of {len(seeds)} in AUPR.")
        text += (f" The default of `bindcnn saliency` and /saliency (serving.attribution.DEFAULT_METHOD) is "
                 f"{DEFAULT_METHOD}" + (", the same." if first == DEFAULT_METHOD else f": not the best here."))
    return text


def judge_attribution(seeds: list[int], n: int = ATTRIBUTION_N, background: str = "genome",
                      epochs: int = ATTRIBUTION_EPOCHS, patience: int = ATTRIBUTION_PATIENCE,
                      attribution_n: int = ATTRIBUTION_CARRIERS, methods: tuple[str, ...] = JUDGED,
                      out: str | os.PathLike | None = None, command: str = "bindcnn judge --attribution"
                      ) -> tuple[list[dict], str]:
    """judge_attribution_seed for every seed; returns (rows, markdown) and writes attribution.tsv and
    attribution.md to `out`."""
    from serving.tuning import cpu_name

    settings = (f"background={background}, n={n}, epochs<={epochs}, patience={patience}, "
                f"{attribution_n} carriers per seed, seeds {','.join(map(str, seeds))}")
    t_all = time.perf_counter()
    rows: list[dict] = []
    for seed in seeds:
        t0 = time.perf_counter()
        mine = judge_attribution_seed(seed, n, background, epochs, patience, attribution_n, methods)
        rows += mine
        say(f"seed {seed} (model test AUROC {mine[0]['model_auroc']:.4f}): "
            + ", ".join(f"{r['method']} AUROC {r['auroc']:.3f} AUPR {r['aupr']:.3f}" for r in mine)
            + f"  ({time.perf_counter() - t0:.0f} s)")
    md = markdown(rows, command, settings, time.perf_counter() - t_all,
                  f"{cpu_name()} ({len(os.sched_getaffinity(0))} CPUs)")
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        tsv = ["\t".join(TSV_COLUMNS)] + ["\t".join(f"{r[c]:.6f}" if isinstance(r[c], float) and c != "seconds"
                                                   else str(r[c]) for c in TSV_COLUMNS) for r in rows]
        (out / "attribution.tsv").write_text("\n".join(tsv) + "\n")
        (out / "attribution.md").write_text(md)
    return rows, md
