"""In silico saturation mutagenesis: the logit change of every single-base substitution of sequences of the model's
length, as a TSV (one row per position, every record of a FASTA) and as a figure: importance logo over a heat map.

With an in-process predictor whose model folder has layers.npz, the 3L mutants of a sequence are computed
incrementally (serving.substitutions: a substitution changes K convolution positions and at most a few bins);
otherwise every mutant is scored whole by the predictor, about MUTANTS_PER_CALL mutants per call.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from serving.dna import ALPHABET, SequenceError, codes_to_onehot, length_reason, to_codes
from serving.substitutions import layers_for, mutagenesis

MUTANTS_PER_CALL = 8192  # per-window fallback: whole sequences' mutants per predictor call, about this many
RECORDS_PER_PASS = 256  # records encoded and scored together by mutagenesis_records


def saturation_mutagenesis(predictor, seq: str, rc: bool = False) -> tuple[np.ndarray, float]:
    """Logit change of every single-base substitution of one sequence of the model's length.

    Returns (delta: (L, 4) float32, logit(mutant with base b at position i) - logit(sequence), 0 where b
    is the reference base; reference logit). Raises SequenceError for a bad character or length."""
    L = predictor.length
    codes = to_codes(seq, 0, predictor.alphabet)
    if len(codes) != L:
        raise SequenceError(length_reason(len(codes), L), 0)
    delta, ref = mutagenesis_codes(predictor, codes[None], rc)
    return delta[0], float(ref[0])


def mutagenesis_codes(predictor, codes: np.ndarray, rc: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """codes: (N, L) uint8 (serving.dna: 0-3 the alphabet, 4 N) -> (delta (N, L, 4) float32, as
    saturation_mutagenesis; reference logits (N,) float32, from the predictor as scoring gives them)."""
    codes = np.ascontiguousarray(codes, np.uint8)
    ref = np.asarray(predictor.predict_onehot(codes_to_onehot(codes), reverse_complement_average=rc)["logit"],
                     np.float32)
    layers = layers_for(predictor)
    if layers is not None:
        return mutagenesis(layers, codes, rc)[0], ref
    n, L = codes.shape
    delta = np.empty((n, L, 4), np.float32)
    per_call = max(1, MUTANTS_PER_CALL // (4 * L))
    rows = np.arange(L * 4)
    for i in range(0, n, per_call):
        part = codes[i:i + per_call]
        mutants = np.repeat(part, L * 4, axis=0).reshape(len(part), L * 4, L)  # base rows % 4 at position rows // 4
        mutants[:, rows, rows // 4] = rows % 4
        out = predictor.predict_onehot(codes_to_onehot(mutants.reshape(-1, L)), reverse_complement_average=rc)
        delta[i:i + per_call] = out["logit"].reshape(len(part), L, 4) - ref[i:i + per_call, None, None]
    known = codes < 4
    delta[known, codes[known]] = 0.0  # the reference base: the sequence itself
    return delta, ref


def mutagenesis_records(predictor, records: Iterable, rc: bool = False, rid: str | None = None
                        ) -> Iterator[tuple[object, np.ndarray | None, float | None, str]]:
    """FASTA Records (or only the one named rid) -> (record, delta (L, 4) float32, reference logit, "") in input
    order, or (record, None, None, reason) for one that cannot be scored (bad character, wrong length).
    RECORDS_PER_PASS records at a time. (Computing the next pass while the caller writes this one was slower: the
    writer's Python formatting holds the GIL the numpy threads need between their array operations.)"""
    for batch in _passes(records, rid, predictor.length, predictor.alphabet):
        yield from _score_pass(predictor, batch, rc)


def _passes(records: Iterable, rid: str | None, length: int, alphabet: str) -> Iterator[list]:
    """Lists of (record, codes (L,) uint8 or None, reason), RECORDS_PER_PASS long (the last one shorter)."""
    batch = []
    for i, rec in enumerate(records):
        if rid is not None and rec.id != rid:
            continue
        try:
            codes = to_codes(rec.sequence, i, alphabet)
            if len(codes) != length:
                raise SequenceError(length_reason(len(codes), length), i)
            batch.append((rec, codes, ""))
        except SequenceError as exc:
            batch.append((rec, None, exc.reason))
        if len(batch) >= RECORDS_PER_PASS:
            yield batch
            batch = []
    if batch:
        yield batch


def _score_pass(predictor, batch: list, rc: bool) -> list[tuple]:
    good = [codes for _, codes, _ in batch if codes is not None]
    deltas, refs = mutagenesis_codes(predictor, np.stack(good), rc) if good else (None, None)
    out, k = [], 0
    for rec, codes, reason in batch:
        if codes is None:
            out.append((rec, None, None, reason))
        else:
            out.append((rec, deltas[k], float(refs[k]), ""))
            k += 1
    return out


HEADER = "id\tposition\tref\t"  # then delta_logit_<base> for each letter of the alphabet


def header(alphabet: str = ALPHABET) -> str:
    """The TSV's header line: id, position (1-based), ref, then one logit-change column per base."""
    return HEADER + "\t".join(f"delta_logit_{b}" for b in alphabet) + "\n"


def write_mutagenesis(fh: IO[str], delta: np.ndarray, seq: str, rid: str = "sequence") -> None:
    """One record's rows (no header): id, position (1-based), reference base (upper case), delta (L, 4) by column
    ('%.6g'), formatted by one % over the whole record (~2x faster than per value: whole FASTAs are written)."""
    delta = np.asarray(delta, np.float32)
    n, width = delta.shape
    fields = [None] * (n * (width + 2))
    fields[0::width + 2] = range(1, n + 1)
    fields[1::width + 2] = seq.upper()
    for j in range(width):
        fields[2 + j::width + 2] = delta[:, j].tolist()
    fh.write((rid.replace("%", "%%") + "\t%d\t%s" + "\t%.6g" * width + "\n") * n % tuple(fields))


def mean_centred(delta: np.ndarray) -> np.ndarray:
    """(L, 4) -> (L, 4) minus the mean over the 4 bases at each position (the usual ISM logo)."""
    return delta - delta.mean(axis=1, keepdims=True)


def reference_importance(delta: np.ndarray, seq: str, alphabet: str = ALPHABET) -> np.ndarray:
    """(L, 4) changes -> (L, 4) zero but at each reference base: minus the mean change of substituting it,
    the observed-base ISM attribution tangermeme and chrombpnet users plot (tall letters = bases that matter)."""
    codes = to_codes(seq, 0, alphabet)
    out = np.zeros_like(delta, dtype=np.float32)
    known = codes < len(alphabet)  # N: no reference base to draw
    out[np.flatnonzero(known), codes[known]] = mean_centred(delta)[np.flatnonzero(known), codes[known]]
    return out


def mutagenesis_figure(delta: np.ndarray, seq: str, title: str = "", alphabet: str = ALPHABET):
    """The figure plot_mutagenesis saves. delta: (L, 4). On top the reference bases scaled by their importance
    (reference_importance), below a heat map of every substitution's logit change (blue: binding lost), ~20 px per
    position. Longer than serving.plots.ZOOM_AFTER: the strongest ZOOM_NT positions (serving.plots.strongest_stretch
    of the importance) so, and the whole sequence's importance logo underneath with that stretch shaded, as the
    attribution logos; x = 0-based position in the sequence throughout."""
    from serving.plots import WIDE_IN, ZOOM_AFTER, ZOOM_NT, draw_logo, pyplot, strongest_stretch

    plt = pyplot()
    L = len(delta)
    importance = reference_importance(delta, seq, alphabet)
    zoomed = L > ZOOM_AFTER
    s, w = (strongest_stretch(importance), ZOOM_NT) if zoomed else (0, L)
    fig = plt.figure(figsize=(WIDE_IN if zoomed else min(WIDE_IN, max(6.0, L * WIDE_IN / ZOOM_NT)),
                              4.6 if zoomed else 3.0))
    top, heat_y, heat_h = (0.62, 0.42, 0.17) if zoomed else (0.47, 0.15, 0.27)
    logo = fig.add_axes((0.07, top, 0.85, 0.9 - top))
    heat = fig.add_axes((0.07, heat_y, 0.85, heat_h), sharex=logo)
    bar = fig.add_axes((0.93, heat_y, 0.008, heat_h))
    draw_logo(logo, importance[s:s + w], alphabet, start=s)
    logo.set_ylabel("importance\n(-mean \u0394logit)", fontsize=7)
    logo.tick_params(labelbottom=False, labelsize=7)
    lim = float(np.abs(delta).max()) or 1.0  # the whole sequence's scale, so a stretch does not look stronger
    im = heat.imshow(np.asarray(delta[s:s + w], np.float32).T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                     interpolation="nearest", extent=(s - 0.5, s + w - 0.5, len(alphabet) - 0.5, -0.5))
    heat.set_yticks(range(len(alphabet)), list(alphabet), fontsize=7)
    heat.set_ylabel("to", fontsize=7)
    heat.set_xlabel("position", fontsize=8)
    heat.tick_params(labelsize=7)
    cb = fig.colorbar(im, cax=bar)
    cb.set_label("\u0394logit", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    if zoomed:
        heat.set_xlabel("")
        whole = fig.add_axes((0.07, 0.08, 0.85, 0.22))
        draw_logo(whole, importance, alphabet)
        whole.axvspan(s - 0.5, s + w - 0.5, color="0.88", zorder=0, linewidth=0)
        whole.set_ylabel("importance\n(whole)", fontsize=7)
        whole.set_xlabel("position", fontsize=8)
        whole.tick_params(labelsize=7)
        title = (f"{title}: " if title else "") + f"positions {s}-{s + w - 1} of {L} (the strongest {w}), magnified"
    if title:
        logo.set_title(title, fontsize=9)
    return fig


def plot_mutagenesis(delta: np.ndarray, seq: str, path: str | os.PathLike | IO[bytes], title: str = "",
                     alphabet: str = ALPHABET) -> Path | IO[bytes]:
    """PNG of one sequence's ISM, delta: (L, 4) (mutagenesis_figure: importance logo over the substitutions' heat
    map; a long sequence's strongest stretch magnified above the whole)."""
    from serving.plots import save_figure

    return save_figure(mutagenesis_figure(delta, seq, title, alphabet), path, layout=False)
