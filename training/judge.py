"""Judging the built-in set and the training options over several seeds, not one (`bindcnn judge`): per seed a
fresh synthetic set and a fresh model; mean and spread of CNN vs PWM-baseline AUROC and attribution-on-motif."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from serving.console import say
from serving.dna import reverse_complement

COLUMNS = ("cnn_auroc", "cnn_auroc_rc", "pwm_auroc", "margin", "margin_rc", "epochs", "seconds")


def train_seed(seed: int, n: int, background: str = "genome", rc_augment: bool = False, epochs: int = 100,
               patience: int = 5):
    """One trial's set and model: synthetic_dataset(n, seed, background) -> fit(seed, rc_augment). Returns
    (dataset, FitResult, the Keras logit model: x (N, L, 4) -> (N, 1) pre-sigmoid logit)."""
    from training.datasets.synthetic import synthetic_dataset
    from training.fit import fit
    from training.model import logit_model

    ds = synthetic_dataset(n, seed=seed, background=background)
    result = fit(ds.x["train"], ds.y["train"], ds.x["valid"], ds.y["valid"], epochs=epochs, patience=patience,
                 seed=seed, verbose=False, rc_augment=rc_augment)
    return ds, result, logit_model(result.model)


def judge_seed(seed: int, n: int, background: str = "genome", rc_augment: bool = False, epochs: int = 100,
               patience: int = 5, attribution_n: int = 300, methods: tuple[str, ...] = ()) -> dict:
    """One trial: synthetic_dataset(n, seed, background) -> fit(seed, rc_augment) -> test-split AUROC of the
    CNN (one strand; both strands' logits averaged), of the PWM baseline, and for each attribution method
    the on-motif rate (training.evaluate.top_window_hits: the primary measure) and the fraction of the top 19
    positions inside the instance (top_positions_inside: graded) on the first `attribution_n` instance carriers."""
    from serving.attribution import attribute
    from training.baseline import best_match_position, pwm_baseline
    from training.evaluate import auroc, top_positions_inside, top_window_hits

    ds, result, logit = train_seed(seed, n, background, rc_augment, epochs, patience)
    x, y = ds.x["test"], ds.y["test"][:, 0]
    z = logit.predict(x, batch_size=2048, verbose=0).reshape(-1)
    z_rc = logit.predict(np.ascontiguousarray(reverse_complement(x)), batch_size=2048, verbose=0).reshape(-1)
    row = {"seed": seed, "cnn_auroc": auroc(y, z), "cnn_auroc_rc": auroc(y, (z + z_rc) / 2),
           "pwm_auroc": pwm_baseline(x, y)["auroc"], "epochs": result.epochs_run,
           "seconds": round(result.seconds, 1)}
    row["margin"], row["margin_rc"] = row["cnn_auroc"] - row["pwm_auroc"], row["cnn_auroc_rc"] - row["pwm_auroc"]
    carriers = np.flatnonzero(ds.motif["test"][:, 0] >= 0)[:attribution_n]
    xs, motif = x[carriers], ds.motif["test"][carriers]
    row["pwm_on_motif"] = float(top_window_hits(_position_scores(best_match_position(xs), xs.shape), motif).mean())
    for method in methods:
        scores = attribute(lambda xb: logit(xb, training=False), xs, method)
        row[f"on_motif_{method}"] = float(top_window_hits(scores, motif).mean())
        row[f"top19_inside_{method}"] = float(top_positions_inside(scores, motif).mean())
    return row


def _position_scores(positions: np.ndarray, shape: tuple) -> np.ndarray:
    """(N, 3) best-match (start, end, strand) -> (N, L, 4) scores that are 1 inside the match, for the
    same top-window measure as the attributions."""
    scores = np.zeros(shape, np.float32)
    for s, (start, end, _) in zip(scores, positions):
        s[start:end, 0] = 1
    return scores


def summarize(rows: list[dict]) -> dict:
    """{column: (mean, sample SD)} over the trials for every numeric column but the seed."""
    keys = [k for k in rows[0] if k != "seed"]
    return {k: (float(np.mean([r[k] for r in rows])),
                float(np.std([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0) for k in keys}


def table(rows: list[dict], title: str) -> str:
    """Markdown: one line per seed, then mean +- SD."""
    keys = [k for k in rows[0] if k != "seed"]
    fmt = lambda k, v: f"{v:.4f}" if k not in ("epochs", "seconds") else f"{v:g}"  # noqa: E731
    lines = [f"### {title}", "", "| seed | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    lines += [f"| {r['seed']} | " + " | ".join(fmt(k, r[k]) for k in keys) + " |" for r in rows]
    summary = summarize(rows)
    lines.append("| mean +- SD | " + " | ".join(f"{fmt(k, m)} +- {fmt(k, sd)}" for k, (m, sd) in summary.items())
                 + " |")
    return "\n".join(lines) + "\n"


def judge(seeds: list[int], n: int, background: str = "genome", rc_augment: bool = False, epochs: int = 100,
          patience: int = 5, attribution_n: int = 300, methods: tuple[str, ...] = (),
          out: str | os.PathLike | None = None) -> tuple[list[dict], str]:
    """Run judge_seed for every seed; returns (rows, markdown) and writes judge.json / judge.md to `out`."""
    title = (f"background={background} n={n} rc_augment={rc_augment} epochs<={epochs} patience={patience} "
             f"seeds={','.join(map(str, seeds))}")
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        rows.append(judge_seed(seed, n, background, rc_augment, epochs, patience, attribution_n, methods))
        r = rows[-1]
        say(f"seed {seed}: CNN AUROC {r['cnn_auroc']:.4f} (both strands {r['cnn_auroc_rc']:.4f}), PWM "
            f"{r['pwm_auroc']:.4f}; " + ", ".join(f"{k} {v:.3f}" for k, v in r.items() if "on_motif" in k)
            + f"  ({time.perf_counter() - t0:.0f} s)")
    md = table(rows, title)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "judge.json").write_text(json.dumps({"settings": title, "rows": rows,
                                                    "summary": summarize(rows)}, indent=2) + "\n")
        (out / "judge.md").write_text(md)
    return rows, md
