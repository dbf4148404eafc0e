"""The saliency report of the `saliency` command: the top predictions of a split, their grad x input logos, a
heat map, the raw scores and a TSV that says how well each map finds the true motif where it is known."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from serving.artifact import SAVED_MODEL_DIR, verify_model_dir
from serving.attribution import load_logits_fn, saliency
from serving.plots import plot_heatmap, plot_logo
from serving.predictor import Predictor
from training.datasets import load_h5
from training.evaluate import motif_auroc, top_indices

TOP_HEADER = "rank\tindex\tprobability\tlogit\tmotif_start\tmotif_end\tmotif_strand\tmotif_auroc\tlogo"


def saliency_report(model: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, split: str = "test",
                    top: int = 10, corrected: bool = False) -> tuple[Path, np.ndarray]:
    """Write logo_RR_<split><index>.png per top prediction, heatmap.png, scores.npy (top, L, 4) and top.tsv
    to `out`. Returns (out, scores)."""
    verify_model_dir(model, need=(SAVED_MODEL_DIR,))
    ds = load_h5(data)
    x = ds.x[split]
    pred = Predictor(model, device="cpu").predict_onehot(x)
    idx = top_indices(pred["probability"], top)
    scores = saliency(load_logits_fn(model), x[idx], corrected=corrected)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    motif = ds.motif.get(split)
    rows, labels = [TOP_HEADER], []
    for rank, (i, s) in enumerate(zip(idx, scores), start=1):
        logo = out / f"logo_{rank:02d}_{split}{i}.png"
        plot_logo(s, logo, title=f"#{rank} {split}[{i}] p={pred['probability'][i]:.3f}")
        m = motif[i] if motif is not None else np.array([-1, -1, 0])
        m_auc = motif_auroc(s[None], m[None]) if m[0] >= 0 else []
        rows.append(f"{rank}\t{i}\t{pred['probability'][i]:.6f}\t{pred['logit'][i]:.6f}\t"
                    f"{m[0] if m[0] >= 0 else ''}\t{m[1] if m[0] >= 0 else ''}\t{m[2] or ''}\t"
                    f"{f'{m_auc[0]:.4f}' if len(m_auc) else ''}\t{logo.name}")
        labels.append(f"#{rank} {split}[{i}]")
    plot_heatmap(scores, out / "heatmap.png", labels)
    np.save(out / "scores.npy", scores)
    (out / "top.tsv").write_text("\n".join(rows) + "\n")
    return out, scores
