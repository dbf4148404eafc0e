"""The report of the `saliency` command: attributions (gradient, corrected or expected gradients) of the top
predictions of a dataset split, or of every record of a user's FASTA, as logos, a heat map, scores.npy and a TSV
(with, where the true motif is known, whether each map's top window finds it, and for expected gradients each
map's convergence_delta: its completeness gap). A sequence's map does not depend on its row or the FASTA order."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from serving.artifact import SAVED_MODEL_DIR, verify_model_dir
from serving.attribution import DEFAULT_METHOD, attribution, load_logits_fn
from serving.plots import plot_heatmap, plot_logo
from serving.predictor import Predictor
from training.datasets import load_h5
from training.evaluate import motif_auroc, top_indices, top_window_hits

TOP_HEADER = ("rank\tindex\tprobability\tlogit\tmotif_start\tmotif_end\tmotif_strand\tmotif_auroc\tlogo\t"
              "top_window_on_motif\tconvergence_delta")
RECORDS_HEADER = "row\trecord\tid\tprobability\tlogit\tlogo\tconvergence_delta"
HEATMAP_ROWS = 50  # the heat map shows at most this many sequences (the first rows of scores.npy)
YLABEL = {"gradient": "grad x input", "corrected": "corrected grad x input",
          "expected_gradients": "expected gradients"}


def saliency_report(model: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, split: str = "test",
                    top: int = 10, method: str = DEFAULT_METHOD) -> tuple[Path, np.ndarray]:
    """Write logo_RR_<split><index>.png per top prediction, heatmap.png, scores.npy (top, L, 4) and top.tsv
    (convergence_delta: expected gradients' completeness gap per map) to `out`. Returns (out, scores)."""
    verify_model_dir(model, need=(SAVED_MODEL_DIR,))
    ds = load_h5(data)
    x = ds.x[split]
    pred = Predictor(model, device="cpu").predict_onehot(x)
    idx = top_indices(pred["probability"], top)
    scores, delta = attribution(load_logits_fn(model), x[idx], method)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    motif = ds.motif.get(split)
    rows, labels = [TOP_HEADER], []
    for rank, (i, s) in enumerate(zip(idx, scores), start=1):
        logo = out / f"logo_{rank:02d}_{split}{i}.png"
        plot_logo(s, logo, title=f"#{rank} {split}[{i}] p={pred['probability'][i]:.3f} ({method})",
                  ylabel=YLABEL[method])
        m = motif[i] if motif is not None else np.array([-1, -1, 0])
        m_auc = motif_auroc(s[None], m[None]) if m[0] >= 0 else []
        hit = top_window_hits(s[None], m[None]) if m[0] >= 0 else []
        rows.append(f"{rank}\t{i}\t{pred['probability'][i]:.6f}\t{pred['logit'][i]:.6f}\t"
                    f"{m[0] if m[0] >= 0 else ''}\t{m[1] if m[0] >= 0 else ''}\t{m[2] or ''}\t"
                    f"{f'{m_auc[0]:.4f}' if len(m_auc) else ''}\t{logo.name}\t"
                    f"{('yes' if hit[0] else 'no') if len(hit) else ''}\t{_delta(delta, rank - 1)}")
        labels.append(f"#{rank} {split}[{i}]")
    plot_heatmap(scores, out / "heatmap.png", labels, colorbar_label=YLABEL[method])
    np.save(out / "scores.npy", scores)
    (out / "top.tsv").write_text("\n".join(rows) + "\n")
    return out, scores


def _delta(delta: np.ndarray | None, row: int) -> str:
    """The TSV cell of a map's convergence_delta (expected gradients' completeness gap); empty for other methods."""
    return "" if delta is None else f"{delta[row]:.6g}"


def read_fasta_onehot(fasta: str | os.PathLike, length: int, alphabet: str) -> tuple[list[str], np.ndarray]:
    """Every record of a FASTA file -> (ids, x (N, L, 4) float32); a record of another length or with a bad
    character raises ValueError naming its number and id."""
    from serving.dna import SequenceError, encode_one
    from serving.fasta import read_fasta

    ids, rows = [], []
    for number, rec in enumerate(read_fasta(fasta), start=1):
        if len(rec.sequence) != length:
            raise ValueError(f"{fasta}: record {number} ({rec.id!r}) has length {len(rec.sequence)}; the model "
                             f"explains sequences of exactly {length} nt (cut them, e.g. summit +- {length // 2})")
        try:
            rows.append(encode_one(rec.sequence, alphabet=alphabet))
        except SequenceError as exc:
            raise ValueError(f"{fasta}: record {number} ({rec.id!r}): {exc.reason}") from None
        ids.append(rec.id)
    if not ids:
        raise ValueError(f"{fasta}: no records")
    return ids, np.stack(rows)


def logo_names(ids: list[str]) -> list[str]:
    """File-safe, unique logo names from record ids: logo_<id>.png (other characters -> '_')."""
    names, seen = [], set()
    for i, rid in enumerate(ids):
        stem = re.sub(r"[^A-Za-z0-9._+-]", "_", rid)[:100] or f"record{i + 1}"
        name = f"logo_{stem}.png" if stem not in seen else f"logo_{stem}_{i + 1}.png"
        seen.add(stem)
        names.append(name)
    return names


def fasta_report(model: str | os.PathLike, fasta: str | os.PathLike, out: str | os.PathLike,
                 top: int | None = None, method: str = DEFAULT_METHOD,
                 max_logos: int = 100) -> tuple[Path, np.ndarray, list[str]]:
    """Explain every record of `fasta` (top: only the `top` highest probabilities), in input order: scores.npy
    (N, L, 4), ids.txt (line i = scores[i]), records.tsv, a logo per record named with its id (the first
    `max_logos`) and heatmap.png (the first 50); records.tsv's convergence_delta is expected gradients'
    completeness gap per map (empty for other methods). Returns (out, scores, ids)."""
    meta = verify_model_dir(model, need=(SAVED_MODEL_DIR,))
    ids, x = read_fasta_onehot(fasta, meta["sequence_length"], meta["alphabet"])
    pred = Predictor(model, device="cpu").predict_onehot(x)
    rows = np.arange(len(ids)) if top is None else np.sort(top_indices(pred["probability"], top))
    scores, delta = attribution(load_logits_fn(model), x[rows], method)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kept = [ids[i] for i in rows]
    names = logo_names(kept)
    lines = [RECORDS_HEADER]
    for row, (i, s, name) in enumerate(zip(rows, scores, names)):
        drawn = row < max_logos
        if drawn:
            plot_logo(s, out / name, title=f"{ids[i]} p={pred['probability'][i]:.3f} ({method})",
                      ylabel=YLABEL[method])
        lines.append(f"{row}\t{i + 1}\t{ids[i]}\t{pred['probability'][i]:.6f}\t{pred['logit'][i]:.6f}\t"
                     f"{name if drawn else ''}\t{_delta(delta, row)}")
    plot_heatmap(scores[:HEATMAP_ROWS], out / "heatmap.png", kept[:HEATMAP_ROWS], colorbar_label=YLABEL[method])
    np.save(out / "scores.npy", scores)
    (out / "ids.txt").write_text("\n".join(kept) + "\n")
    (out / "records.tsv").write_text("\n".join(lines) + "\n")
    return out, scores, kept
