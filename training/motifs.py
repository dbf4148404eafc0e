"""Motif discovery from a trained model (`bindcnn motifs`): expected-gradients hypothetical contributions of the
sequences the model calls bound, TF-MoDISco patterns (modisco-lite), each matched by TomTom (memelite) against
JASPAR CORE vertebrates (pyjaspar's offline database), and a report: motifs.tsv, logos, summary.md."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from serving.artifact import SAVED_MODEL_DIR, verify_model_dir
from serving.attribution import hypothetical_contributions, load_logits_fn
from serving.console import say
from serving.dna import reverse_complement
from serving.plots import pyplot, save_figure
from serving.predictor import Predictor

TSV_HEADER = ("pattern\tseqlets\tlength\tmatch_id\tmatch_name\tp_value\tq_value\tmatch_strand\tsecond_match\t"
              "second_q_value\tlogo")
TRIM_FRACTION = 0.3  # keep the span where |contribution| >= 30% of the pattern's maximum (modisco-lite's report)


def jaspar_targets(release: str = "JASPAR2024") -> tuple[list[str], list[str], list[np.ndarray]]:
    """JASPAR CORE vertebrates, latest version of each matrix, from pyjaspar's offline database:
    (ids, names, probability matrices (4, W) in ACGT order)."""
    from pyjaspar import jaspar_releases, jaspardb

    if release not in jaspar_releases:  # pyjaspar itself only prints a line and fails later
        raise ValueError(f"pyjaspar has no release {release!r}; it has {', '.join(sorted(jaspar_releases))}")
    db = jaspardb(release=release)
    motifs = db.fetch_motifs(collection="CORE", tax_group=["vertebrates"], all_versions=False)
    ppms = []
    for m in motifs:
        counts = np.array([m.counts[b] for b in "ACGT"], np.float64) + 0.25
        ppms.append(counts / counts.sum(axis=0, keepdims=True))
    return [m.matrix_id for m in motifs], [m.name for m in motifs], ppms


def select_sequences(model, data=None, fasta=None, split: str = "test", called_only: bool = True,
                     n: int = 2000) -> tuple[np.ndarray, str]:
    """x (K, L, 4) to explain: the --data split's positives (or a FASTA's records) the model calls bound
    (p >= 0.5), at most n, the most confident first; and a sentence saying which."""
    meta = verify_model_dir(model, need=(SAVED_MODEL_DIR,))
    if fasta is not None:
        from training.explain import read_fasta_onehot

        x, what = read_fasta_onehot(fasta, meta["sequence_length"], meta["alphabet"])[1], f"records of {fasta}"
        labels = np.ones(len(x), bool)
    else:
        from training.datasets import load_h5

        ds = load_h5(data)
        x, labels, what = ds.x[split], ds.y[split][:, 0] >= 0.5, f"positives of {data} ({split})"
    prob = Predictor(model, device="cpu").predict_onehot(x)["probability"]
    keep = labels & (prob >= 0.5) if called_only else np.ones(len(x), bool)
    idx = np.flatnonzero(keep)[np.argsort(-prob[keep], kind="mergesort")][:n]
    if len(idx) == 0:
        raise ValueError(f"the model calls none of the {what} bound; run with --all")
    return x[idx], f"{len(idx)} {what}" + (" called bound (p >= 0.5)" if called_only else "")


def discover(x: np.ndarray, hyp: np.ndarray, max_seqlets: int = 5000, leiden_runs: int = 8) -> list[tuple[str, object]]:
    """TF-MoDISco on x (N, L, 4) and hypothetical contributions (N, L, 4): [(name, pattern)], positive
    metacluster first (pattern_0 has the most seqlets), then the negative one (neg_pattern_k)."""
    from modiscolite.tfmodisco import TFMoDISco

    pos, neg = TFMoDISco(one_hot=x.astype(np.float32), hypothetical_contribs=hyp.astype(np.float32),
                         max_seqlets_per_metacluster=max_seqlets, n_leiden_runs=leiden_runs, verbose=False)
    return [(f"pattern_{i}", p) for i, p in enumerate(pos or [])] + \
           [(f"neg_pattern_{i}", p) for i, p in enumerate(neg or [])]


def trimmed(pattern) -> slice:
    """The span of a pattern whose summed |contribution| reaches TRIM_FRACTION of its maximum."""
    score = np.abs(pattern.contrib_scores).sum(axis=1)
    keep = np.flatnonzero(score >= TRIM_FRACTION * score.max())
    return slice(int(keep.min()), int(keep.max()) + 1)


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values of one query's p-values against all targets: (T,) -> (T,)."""
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1.0)
    return out


def match(ppms: list[np.ndarray], targets: list[np.ndarray]) -> list[dict]:
    """TomTom of each query (W, 4) against every target (4, W'): per query the targets by q-value
    (BH over all targets): [{"order", "p", "q", "strand"}]."""
    from memelite import tomtom

    p, _, _, _, strands = tomtom([q.T.astype(np.float64) for q in ppms], targets)[:5]
    out = []
    for row, strand in zip(np.asarray(p), np.asarray(strands)):
        q = bh_qvalues(row)
        order = np.lexsort((row, q))
        out.append({"order": order, "p": row, "q": q, "strand": strand})
    return out


def _information(ppm: np.ndarray) -> np.ndarray:
    """(W, 4) probabilities -> (W, 4) letter heights in bits."""
    ic = 2 + (ppm * np.log2(np.clip(ppm, 1e-9, 1))).sum(axis=1, keepdims=True)
    return ppm * ic


def plot_pattern(cwm: np.ndarray, target: np.ndarray, title: str, match_title: str, path: Path) -> Path:
    """Two logos: the pattern's contribution weight matrix (W, 4) above its best match's information (W', 4)."""
    import logomaker
    import pandas as pd

    plt = pyplot()
    fig, (a, b) = plt.subplots(2, 1, figsize=(max(6.5, 0.3 * max(len(cwm), len(target))), 3.6))
    logomaker.Logo(pd.DataFrame(cwm, columns=list("ACGT")), ax=a)
    a.set_ylabel("contribution")
    a.set_title(title, fontsize=9)
    logomaker.Logo(pd.DataFrame(_information(target), columns=list("ACGT")), ax=b)
    b.set(ylabel="bits", ylim=(0, 2))
    b.set_title(match_title, fontsize=9)
    return save_figure(fig, path)


def motifs_report(model: str | os.PathLike, out: str | os.PathLike, data=None, fasta=None, split: str = "test",
                  called_only: bool = True, n: int = 2000, max_seqlets: int = 5000, release: str = "JASPAR2024",
                  seed: int = 0) -> tuple[Path, list[dict]]:
    """The whole command: select, attribute (expected gradients), discover, match, write. Returns (out, rows)."""
    ids, names, targets = jaspar_targets(release)  # first: a bad release fails before the long work
    x, what = select_sequences(model, data, fasta, split, called_only, n)
    say(f"expected gradients of {what}")
    hyp = hypothetical_contributions(load_logits_fn(model), x, seed=seed)
    say("TF-MoDISco (modisco-lite) ...")
    patterns = discover(x, hyp, max_seqlets)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    if patterns:
        spans = [trimmed(p) for _, p in patterns]
        matches = match([p.sequence[s] for (_, p), s in zip(patterns, spans)], targets)
        for (name, p), span, m in zip(patterns, spans, matches):
            best, second = m["order"][0], m["order"][1]
            target = targets[best].T
            rc = bool(m["strand"][best])
            logo = plot_pattern(p.contrib_scores[span], reverse_complement(target) if rc else target,
                                f"{name}: {len(p.seqlets)} seqlets",
                                f"best match {ids[best]} {names[best]}{' (reverse complement)' if rc else ''}, "
                                f"q = {m['q'][best]:.2g}", out / f"{name}.png")
            rows.append({"pattern": name, "seqlets": len(p.seqlets), "length": span.stop - span.start,
                         "match_id": ids[best], "match_name": names[best], "p_value": float(m["p"][best]),
                         "q_value": float(m["q"][best]), "match_strand": "-" if rc else "+",
                         "second_match": f"{ids[second]} {names[second]}", "second_q_value": float(m["q"][second]),
                         "logo": logo.name})
    lines = [TSV_HEADER] + ["\t".join(f"{r[k]:.3g}" if isinstance(r[k], float) else str(r[k])
                                      for k in TSV_HEADER.split("\t")) for r in rows]
    (out / "motifs.tsv").write_text("\n".join(lines) + "\n")
    (out / "summary.md").write_text(_summary(model, what, release, len(targets), rows))
    return out, rows


def _summary(model, what: str, release: str, n_targets: int, rows: list[dict]) -> str:
    lines = [f"# Motifs learned by {model}", "",
             f"Attributions: expected gradients (integrated gradients over dinucleotide-shuffled references) of "
             f"{what}. Patterns: TF-MoDISco (modisco-lite). Matches: TomTom (memelite) against {n_targets} "
             f"JASPAR CORE vertebrate matrices ({release}, pyjaspar); q-values are Benjamini-Hochberg over all "
             "of them.", ""]
    if not rows:
        return "\n".join(lines + ["TF-MoDISco found no pattern (too few seqlets: explain more sequences)."]) + "\n"
    lines += ["| pattern | seqlets | best match | q-value | next best | logo |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['pattern']} | {r['seqlets']} | {r['match_id']} {r['match_name']} | {r['q_value']:.2g} | "
              f"{r['second_match']} | ![{r['pattern']}]({r['logo']}) |" for r in rows]
    return "\n".join(lines) + "\n"
