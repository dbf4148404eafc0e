"""Variant effects: alt - ref, in logit and probability, on the model-length window centred on each variant.

Variants: a TSV `chrom pos ref alt [id]` (1-based pos, optional header; VCF/BCF: serving.scoring.vcf) or the
items of a service request, placed on an indexed genome (serving.scoring.vcf.place_in_genome) or on one sequence
(in_sequence). The window is always centred (the variant's first base at index L // 2): a variant whose window
does not fit inside its chromosome (or the sequence given) gets the status `window_off_chromosome: ...` and no
score, never a shifted window. Each delta_logit gets an empirical p-value against the model folder's null of random
substitutions (serving.scoring.pvalues; NA where the folder has none).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from serving.dna import SequenceError, encode_one
from serving.fasta import open_text
from serving.scoring.pvalues import predictor_p_values

WINDOW_OFF = "window_off_chromosome"  # the status of a variant whose centred window runs off its sequence
ALLELE_OK = set("ACGTNacgtn")
EFFECT_FIELDS = ("ref_probability", "alt_probability", "delta_probability", "ref_logit", "alt_logit", "delta_logit",
                 "p_value")
HEADER = "\t".join(("id", "chrom", "pos", "ref", "alt", *EFFECT_FIELDS, "status")) + "\n"


@dataclass
class Variant:
    """One ALT allele of one record: where (chrom as written, 1-based pos), what (ref, alt), the line of its file
    (a BCF: its record number), its status ("ok", or why it was not scored) and, once placed, its two windows."""

    chrom: str
    pos: int  # 1-based, as in VCF
    ref: str
    alt: str
    id: str = ""
    line: int = 0  # in the variants file, for messages
    status: str = "ok"  # or the reason it was not scored
    ref_window: str | None = field(default=None, repr=False)
    alt_window: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.id or f"{self.chrom}:{self.pos}:{self.ref}>{self.alt}"


def allele_problem(ref: str, alt: str) -> str | None:
    """Why a ref/alt pair cannot be scored (None when it can): alleles must be A, C, G, T or N sequences."""
    if not ref or not alt or not set(ref + alt) <= ALLELE_OK:
        return f"unsupported allele {ref!r}>{alt!r} (only A, C, G, T, N sequences)"
    return None


class VariantFileError(ValueError):
    """A variants file that cannot be read (names the line)."""


def iter_variants(path: str | os.PathLike) -> Iterator[Variant]:
    """Stream a TSV `chrom pos ref alt [id]` (1-based pos; an optional header line; plain or gzip). Malformed
    lines raise VariantFileError naming the line; a variant that merely cannot be scored is kept with a status.
    (VCF and BCF: serving.scoring.vcf.)"""
    seen = 0
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            if not seen and len(cols) > 1 and not any(ch.isdigit() for ch in cols[1]):
                seen = 1
                continue  # the TSV's header line (its pos column has no digit: "pos", "position")
            if len(cols) < 4:
                raise VariantFileError(f"{path}, line {lineno}: expected chrom, pos, ref, alt; got {line[:80]!r}")
            chrom, pos, ref, alt = cols[0], cols[1], cols[2], cols[3]
            try:
                ipos = int(pos)
            except ValueError:
                raise VariantFileError(f"{path}, line {lineno}: position {pos!r} is not an integer") from None
            v = Variant(chrom, ipos, ref, alt, cols[4] if len(cols) > 4 else "", lineno)
            v.status = position_problem(ipos) or allele_problem(ref, alt) or "ok"
            seen += 1
            yield v


def position_problem(pos: int) -> str | None:
    """Why a 1-based position cannot be placed (None when it can)."""
    return f"position {pos} is not 1-based (must be >= 1)" if pos < 1 else None


def window_span(p0: int, ref: str, alt: str, length: int) -> tuple[int, int]:
    """The stretch [start, end) of the reference (0-based) that a variant at p0 needs: its ref and alt windows of
    `length` bp, the variant's first base at index length // 2 of both (a deletion's alt window reads further)."""
    start = p0 - length // 2
    return start, max(start + length + max(0, len(ref) - len(alt)), p0 + len(ref))


def window_off(length: int, why: str) -> str:
    """The status of a variant whose centred window is not all inside its sequence: WINDOW_OFF and why."""
    return f"{WINDOW_OFF}: its centred {length} bp window needs bases the reference does not have ({why})"


def variant_windows(seq: str, p0: int, ref: str, alt: str, length: int) -> tuple[str, str]:
    """The reference and alternative windows of `length` bp centred on 0-based position p0 (ref starts there):
    the variant's first base at index length // 2 of both. seq must hold window_span(p0, ref, alt, length)
    (ValueError otherwise: windows are never shifted or padded). Indels: the alt window starts at the same place
    and is cut, or continued with the following reference bases, to `length`."""
    start, end = window_span(p0, ref, alt, length)
    if start < 0 or end > len(seq):
        raise ValueError(f"the window [{start}, {end}) of a variant at {p0} is not inside the {len(seq)} bp sequence")
    ref_win = seq[start : start + length]
    alt_win = (seq[start:p0] + alt + seq[p0 + len(ref) : end])[:length]
    return ref_win, alt_win


def place_variant(v: Variant, seq: str, p0: int, length: int, rid: str) -> None:
    """Check v.ref against `seq` at 0-based p0 and cut v's ref/alt windows (in place), or set v.status saying
    what was wrong: a ref mismatch, or (WINDOW_OFF) a centred window that does not fit inside seq."""
    have = seq[p0 : p0 + len(v.ref)]
    if have.upper() != v.ref.upper():
        v.status = (f"ref mismatch: the sequence has {have.upper() or '(end)'!r} at {v.chrom}:{v.pos}, "
                    f"the variant says {v.ref!r}")
        return
    start, end = window_span(p0, v.ref, v.alt, length)
    if start < 0 or end > len(seq):
        v.status = window_off(length, f"{rid}:{start}-{end} in 0-based coordinates; {rid!r} is {len(seq):,} bp")
        return
    v.ref_window, v.alt_window = variant_windows(seq, p0, v.ref, v.alt, length)


def in_sequence(sequence: str, items, rid: str, length: int) -> list[Variant]:
    """Variants given against one sequence (items with pos (1-based in `sequence`), ref, alt, id), checked and
    with their windows cut; what a request to the service holds. The sequence is the variants' whole reference:
    a window that does not fit inside it gets WINDOW_OFF."""
    out = []
    for item in items:
        v = Variant(rid, item.pos, item.ref, item.alt, item.id)
        problem = position_problem(v.pos) or allele_problem(v.ref, v.alt)
        if problem:
            v.status = problem
        elif v.pos > len(sequence):
            v.status = f"position {v.pos} is past the end of the {len(sequence)} bp sequence"
        else:
            place_variant(v, sequence, v.pos - 1, length, rid)
        out.append(v)
    return out


def variant_effects(predictor, variants: list[Variant], rc: bool = False) -> dict[str, np.ndarray]:
    """Predict ref and alt windows of every located variant (one batch each side, chunked by the
    predictor). Returns (V,) float32 arrays ref_probability, alt_probability, ref_logit, alt_logit and (V,) float64
    p_value (serving.scoring.pvalues: NaN where the predictor's folder has no null); NaN where the variant was not
    scored (a window with a bad character gets a status)."""
    nan = np.full(len(variants), np.nan, np.float32)
    out = {k: nan.copy() for k in ("ref_probability", "alt_probability", "ref_logit", "alt_logit")}
    keep, xs_ref, xs_alt = [], [], []
    for i, v in enumerate(variants):
        if v.status != "ok" or v.ref_window is None:
            continue
        try:
            xr = encode_one(v.ref_window, i, predictor.alphabet)
            xa = encode_one(v.alt_window, i, predictor.alphabet)
        except SequenceError as exc:
            v.status = f"window around the variant: {exc.reason}"
            continue
        keep.append(i)
        xs_ref.append(xr)
        xs_alt.append(xa)
    if keep:
        both = predictor.predict_onehot(np.stack(xs_ref + xs_alt), reverse_complement_average=rc)
        k = len(keep)
        out["ref_probability"][keep], out["alt_probability"][keep] = both["probability"][:k], both["probability"][k:]
        out["ref_logit"][keep], out["alt_logit"][keep] = both["logit"][:k], both["logit"][k:]
    out["p_value"] = predictor_p_values(predictor, out["alt_logit"] - out["ref_logit"], rc)
    return out


def effect_rows(variants: list[Variant], eff: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One dict per variant, in order: id, chrom, pos, ref, alt, status, and for scored ones the EFFECT_FIELDS
    (delta = alt - ref; p_value None where the model has no null). The one shape of a variant's result, for the TSV
    and the service alike."""
    rows = []
    for i, v in enumerate(variants):
        row: dict[str, Any] = {"id": v.name, "chrom": v.chrom, "pos": v.pos, "ref": v.ref, "alt": v.alt,
                               "status": v.status}
        rp, ap, rl, al = (float(eff[k][i]) for k in ("ref_probability", "alt_probability", "ref_logit", "alt_logit"))
        if v.status == "ok" and rp == rp:
            p = float(eff["p_value"][i]) if "p_value" in eff else float("nan")
            row.update(ref_probability=rp, alt_probability=ap, delta_probability=ap - rp,
                       ref_logit=rl, alt_logit=al, delta_logit=al - rl, p_value=p if p == p else None)
        rows.append(row)
    return rows


def models_header(names: list[str]) -> str:
    """HEADER for several models: EFFECT_FIELDS once per model, suffixed _NAME (delta_logit_ctcf, ...)."""
    fields = [f"{f}_{n}" for n in names for f in EFFECT_FIELDS]
    return "\t".join(("id", "chrom", "pos", "ref", "alt", *fields, "status")) + "\n"


def format_model_effects(rows_per_model: list[list[dict[str, Any]]]) -> str:
    """TSV lines under models_header: effect_rows of the same variants by each model, side by side."""
    lines = []
    for same in zip(*rows_per_model):
        r = same[0]
        nums = [f"{m[k]:.7g}" if m.get(k) is not None else "NA" for m in same for k in EFFECT_FIELDS]
        lines.append("\t".join([r["id"], r["chrom"], str(r["pos"]), r["ref"], r["alt"], *nums, r["status"]]) + "\n")
    return "".join(lines)


def format_effects(rows: list[dict[str, Any]]) -> str:
    """TSV lines (no header: HEADER) of effect_rows, NA and the reason in `status` for unscored ones; for output
    written chunk by chunk."""
    lines = []
    for r in rows:
        nums = [f"{r[k]:.7g}" if r.get(k) is not None else "NA" for k in EFFECT_FIELDS]
        lines.append("\t".join([r["id"], r["chrom"], str(r["pos"]), r["ref"], r["alt"], *nums, r["status"]]) + "\n")
    return "".join(lines)
