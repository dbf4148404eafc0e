"""Allele-specific attribution: for the variants with the largest |delta_logit|, the attribution maps of the reference
and the alternative window and their difference (alt - ref), so a user sees which bases a variant breaks or makes.

The maps come from serving.attribution (TensorFlow, loaded lazily; its default method) in the CLI (`bindcnn variants
--explain N`: a PNG and a .npy per variant and an index TSV in a folder) and from the explainer worker in the service
(/variants with `explain: true`: the maps in each row). Both windows are centred on the variant (index L // 2); for an
indel the alt window's bases after the variant are shifted, so the difference there compares different bases.
"""
from __future__ import annotations

import heapq
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from serving.dna import ALPHABET

INDEX_FILE = "explained.tsv"
INDEX_HEADER = ("rank", "id", "chrom", "pos", "ref", "alt", "delta_logit", "p_value", "ref_logit", "alt_logit",
                "method", "ref_convergence_delta", "alt_convergence_delta", "png", "npy")
PANELS = ("ref", "alt", "alt - ref")


class TopEffects:
    """The n scored variants with the largest |delta_logit| seen so far, fed chunk by chunk: add(variants, rows)
    with rows from serving.scoring.variants.effect_rows; chosen() -> [(Variant, row)], largest first."""

    def __init__(self, n: int):
        self.n = int(n)
        self._heap: list[tuple[float, int, Any, dict[str, Any]]] = []
        self._seen = 0

    def add(self, variants, rows: list[dict[str, Any]]) -> None:
        for v, row in zip(variants, rows):
            d = row.get("delta_logit")
            if d is None or d != d:
                continue
            self._seen += 1  # ties: the earlier variant stays (a larger counter is the smaller priority)
            item = (abs(float(d)), -self._seen, v, row)
            if len(self._heap) < self.n:
                heapq.heappush(self._heap, item)
            elif item[:2] > self._heap[0][:2]:
                heapq.heapreplace(self._heap, item)

    def chosen(self) -> list[tuple[Any, dict[str, Any]]]:
        return [(v, row) for _, _, v, row in sorted(self._heap, key=lambda t: t[:2], reverse=True)]


def allele_maps(scores: np.ndarray) -> np.ndarray:
    """scores: (2n, L, 4) attribution of n reference windows then their n alternative windows -> (n, 3, L, 4)
    float32: ref, alt, alt - ref (PANELS)."""
    scores = np.asarray(scores, np.float32)
    n = len(scores) // 2
    ref, alt = scores[:n], scores[n:]
    return np.stack([ref, alt, alt - ref], axis=1)


def explained_rows(rows: list[dict[str, Any]], index: list[int], scores: np.ndarray, method: str,
                   convergence_delta: list[float] | None = None) -> list[dict[str, Any]]:
    """The service's /variants with explain: rows[index[j]] gets `explain` = {method, ref, alt, difference: (L, 4)
    lists, ref/alt convergence_delta (expected gradients) or None} from scores: (2 * len(index), L, 4) (the
    explainer's answer for the windows of explain_windows); rows that were not scored get explain = None."""
    maps = allele_maps(scores)
    k = len(index)
    gaps = convergence_delta or [None] * (2 * k)
    for row in rows:
        row["explain"] = None
    for j, i in enumerate(index):
        rows[i]["explain"] = {"method": method, "ref": maps[j, 0].tolist(), "alt": maps[j, 1].tolist(),
                              "difference": maps[j, 2].tolist(), "ref_convergence_delta": gaps[j],
                              "alt_convergence_delta": gaps[k + j]}
    return rows


def explain_windows(variants) -> tuple[list[int], list[str]]:
    """The scored variants among `variants` (status ok, windows cut): (their indices, their reference windows then
    their alternative windows), what the attribution runs on."""
    index = [i for i, v in enumerate(variants) if v.status == "ok" and v.ref_window is not None]
    return index, [variants[i].ref_window for i in index] + [variants[i].alt_window for i in index]


def safe_name(text: str, limit: int = 60) -> str:
    """A variant's name as a file name: letters, digits and . _ - kept, the rest '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:limit] or "variant"


def plot_alleles(maps: np.ndarray, path: str | os.PathLike, title: str, centre: int, alphabet: str = ALPHABET,
                 ylabel: str = "attribution") -> Path:
    """maps: (3, L, 4) ref, alt, alt - ref -> one PNG: the three logos one above the other on the same positions
    (serving.plots.strongest_stretch of the difference, ~20 px letters), the variant's position marked; below, the
    difference over the whole window with that stretch shaded."""
    from serving.plots import WIDE_IN, ZOOM_NT, draw_logo, pyplot, save_figure, strongest_stretch

    plt = pyplot()
    L = maps.shape[1]
    width = min(ZOOM_NT, L)
    s = strongest_stretch(maps[2], width)
    fig, axes = plt.subplots(4, 1, figsize=(WIDE_IN, 7.0), gridspec_kw={"height_ratios": [2, 2, 2, 1.2]})
    for ax, panel, scores in zip(axes, PANELS, maps):
        draw_logo(ax, scores[s:s + width], alphabet, start=s)
        ax.axvline(centre, color="0.4", linestyle=":", linewidth=1)
        ax.set_ylabel(f"{panel}\n{ylabel}", fontsize=8)
        ax.tick_params(labelsize=7)
    limits = [axes[0].get_ylim(), axes[1].get_ylim()]  # ref and alt on one scale: their letters compare by height
    for ax in axes[:2]:
        ax.set_ylim(min(lo for lo, _ in limits), max(hi for _, hi in limits))
    axes[0].set_title(f"{title}: positions {s}-{s + width - 1} of the {L} bp window (variant at {centre}, dotted)",
                      fontsize=9)
    whole = axes[3]
    draw_logo(whole, maps[2], alphabet)
    whole.axvspan(s - 0.5, s + width - 0.5, color="0.88", zorder=0, linewidth=0)
    whole.axvline(centre, color="0.4", linestyle=":", linewidth=1)
    whole.set_ylabel("alt - ref\n(whole)", fontsize=8)
    whole.set_xlabel("position in the window")
    whole.tick_params(labelsize=7)
    return save_figure(fig, path)


def _fmt(x: Any) -> str:
    return "NA" if x is None or (isinstance(x, float) and x != x) else f"{x:.6g}" if isinstance(x, float) else str(x)


def write_explanations(folder: str | os.PathLike, chosen: list[tuple[Any, dict[str, Any]]], maps: np.ndarray,
                       method: str, length: int, alphabet: str = ALPHABET,
                       convergence_delta: np.ndarray | None = None) -> Path:
    """Per chosen variant (largest |delta_logit| first): <rank>_<name>.png (plot_alleles) and <rank>_<name>.npy
    ((3, L, 4) float32: ref, alt, alt - ref), and INDEX_FILE listing them with their effects. maps: (n, 3, L, 4);
    convergence_delta: (2n,) of the ref then the alt windows, or None. Returns the index's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(chosen)
    gaps = [None] * (2 * n) if convergence_delta is None else [float(g) for g in convergence_delta]
    lines = ["\t".join(INDEX_HEADER)]
    for j, (v, row) in enumerate(chosen):
        stem = f"{j + 1:03d}_{safe_name(row['id'])}"
        np.save(folder / f"{stem}.npy", maps[j].astype(np.float32))
        title = (f"{row['id']} {row['chrom']}:{row['pos']} {row['ref']}>{row['alt']}  delta logit "
                 f"{row['delta_logit']:+.3g}" + (f", p {row['p_value']:.2g}" if row.get("p_value") is not None
                                                  else ""))
        plot_alleles(maps[j], folder / f"{stem}.png", title, length // 2, alphabet, method.replace("_", " "))
        lines.append("\t".join(_fmt(x) for x in (
            j + 1, row["id"], row["chrom"], row["pos"], row["ref"], row["alt"], row["delta_logit"], row.get("p_value"),
            row["ref_logit"], row["alt_logit"], method, gaps[j], gaps[n + j], f"{stem}.png", f"{stem}.npy")))
    index = folder / INDEX_FILE
    index.write_text("\n".join(lines) + "\n")
    return index


def explain_top(predictor, chosen: list[tuple[Any, dict[str, Any]]], folder: str | os.PathLike,
                quiet: bool = False) -> Path:
    """The CLI's --explain: attribution (serving.attribution, its default method, TensorFlow loaded here) of the
    chosen variants' ref and alt windows (their windows cut), written by write_explanations. The predictor must be
    a local model folder's (its SavedModel)."""
    from serving.attribution import DEFAULT_METHOD, attribution, load_logits_fn
    from serving.dna import encode

    model_dir = getattr(predictor, "model_dir", None)
    if model_dir is None:
        raise ValueError("--explain needs a local model folder (--model DIR: its TensorFlow SavedModel), not --url")
    variants = [v for v, _ in chosen]
    x = encode([v.ref_window for v in variants] + [v.alt_window for v in variants], predictor.length,
               predictor.alphabet)
    result = attribution(load_logits_fn(model_dir, quiet), x, DEFAULT_METHOD)
    return write_explanations(folder, chosen, allele_maps(result.scores), DEFAULT_METHOD, predictor.length,
                              predictor.alphabet, result.convergence_delta)


def default_folder(output: str | None) -> Path:
    """Where --explain writes without --explain-dir: beside the output (effects.tsv -> effects.explain/), or
    ./variants.explain when the rows go to stdout."""
    if not output or output == "-":
        return Path("variants.explain")
    path = Path(output)
    name = path.name
    for suffix in (".gz", ".tsv", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return path.with_name((name or "variants") + ".explain")
