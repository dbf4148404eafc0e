"""Variant effects: alt - ref, in logit and probability, on the model-length window centred on each variant.

Variants: a TSV `chrom pos ref alt [id]` (1-based pos, optional header) or VCF records; `chrom` is a FASTA
record id, or the chrom of a record named `chrom:start-end` (see serving.scoring.regions) that holds the
position. The reference FASTA is streamed: one record in memory at a time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

import numpy as np

from serving.dna import SequenceError, encode_one
from serving.fasta import open_text, read_fasta
from serving.scoring.regions import parse_region

ALLELE_OK = set("ACGTNacgtn")
EFFECT_FIELDS = ("ref_probability", "alt_probability", "delta_probability", "ref_logit", "alt_logit", "delta_logit")
HEADER = "\t".join(("id", "chrom", "pos", "ref", "alt", *EFFECT_FIELDS, "status")) + "\n"


@dataclass
class Variant:
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


def read_variants(path: str | os.PathLike) -> list[Variant]:
    """Every variant of a file (iter_variants) in a list."""
    return list(iter_variants(path))


def iter_variants(path: str | os.PathLike) -> Iterator[Variant]:
    """Stream a VCF (detected by '##fileformat=VCF' or a '#CHROM' header) or a TSV `chrom pos ref alt [id]`.
    A multi-allelic VCF ALT (A,T) gives one Variant per allele. Malformed lines raise VariantFileError
    naming the line; a variant that merely cannot be scored is kept with a status."""
    seen = 0
    vcf = str(path).lower().endswith((".vcf", ".vcf.gz"))
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if line.startswith(("##fileformat=VCF", "#CHROM")):
                vcf = True
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            if not vcf and not seen and len(cols) > 1 and not cols[1].strip().isdigit():
                continue  # the TSV's header line
            if len(cols) < (5 if vcf else 4):
                want = "CHROM, POS, ID, REF, ALT" if vcf else "chrom, pos, ref, alt"
                raise VariantFileError(f"{path}, line {lineno}: expected {want}; got {line[:80]!r}")
            if vcf:
                chrom, pos, vid, ref, alts = cols[0], cols[1], cols[2], cols[3], cols[4].split(",")
                vid = "" if vid == "." else vid
            else:
                chrom, pos, ref, alts = cols[0], cols[1], cols[2], [cols[3]]
                vid = cols[4] if len(cols) > 4 else ""
            try:
                ipos = int(pos)
            except ValueError:
                raise VariantFileError(f"{path}, line {lineno}: position {pos!r} is not an integer") from None
            for alt in alts:
                v = Variant(chrom, ipos, ref, alt, vid if len(alts) == 1 or not vid else f"{vid}:{alt}", lineno)
                if ipos < 1:
                    v.status = f"position {ipos} is not 1-based (must be >= 1)"
                else:
                    v.status = allele_problem(ref, alt) or "ok"
                seen += 1
                yield v


def variant_windows(seq: str, p0: int, ref: str, alt: str, length: int) -> tuple[str, str]:
    """The reference and alternative windows of `length` bp around 0-based position p0 (ref starts
    there): the variant's first base at index length // 2 where the sequence allows (clipped at the
    ends). Indels: the alt window starts at the same place, is cut or extended with the following
    reference bases, and padded with N past the end of the sequence."""
    n = len(seq)
    start = min(max(p0 - length // 2, 0), max(n - length, 0))
    ref_win = seq[start : start + length]
    alt_win = (seq[start:p0] + alt + seq[p0 + len(ref) : start + length + len(ref)])[:length]
    return ref_win.ljust(length, "N"), alt_win.ljust(length, "N")


def place_variant(v: Variant, seq: str, p0: int, length: int, rid: str) -> None:
    """Check v.ref against `seq` at 0-based p0 and cut v's ref/alt windows (in place), or set v.status
    saying what was wrong (ref mismatch, sequence shorter than the model)."""
    have = seq[p0 : p0 + len(v.ref)]
    if have.upper() != v.ref.upper():
        v.status = (f"ref mismatch: the sequence has {have.upper() or '(end)'!r} at {v.chrom}:{v.pos}, "
                    f"the variant says {v.ref!r}")
    elif len(seq) < length:
        v.status = f"sequence {rid!r} is {len(seq)} bp, shorter than the model's {length}"
    else:
        v.ref_window, v.alt_window = variant_windows(seq, p0, v.ref, v.alt, length)


def in_sequence(sequence: str, items, rid: str, length: int) -> list[Variant]:
    """Variants given against one sequence (items with pos (1-based in `sequence`), ref, alt, id), checked and
    with their windows cut; what a request to the service holds, where locate() reads a whole reference."""
    out = []
    for item in items:
        v = Variant(rid, item.pos, item.ref, item.alt, item.id)
        problem = allele_problem(v.ref, v.alt)
        if problem:
            v.status = problem
        elif v.pos > len(sequence):
            v.status = f"position {v.pos} is past the end of the {len(sequence)} bp sequence"
        else:
            place_variant(v, sequence, v.pos - 1, length, rid)
        out.append(v)
    return out


def locate(variants: list[Variant], fasta: str | os.PathLike, length: int, convention: str = "auto") -> None:
    """Stream the reference FASTA and, for every variant in it, check ref and cut its windows (in
    place: ref_window/alt_window, or status saying what was wrong)."""
    by_chrom: dict[str, list[Variant]] = {}
    for v in variants:
        if v.status == "ok":
            by_chrom.setdefault(v.chrom, []).append(v)
    found: set[int] = set()
    for rec in read_fasta(fasta):
        region = parse_region(rec.id, len(rec.sequence), convention)
        candidates = by_chrom.get(rec.id, []) + (by_chrom.get(region.chrom, []) if region.chrom != rec.id else [])
        for v in candidates:
            offset = 0 if v.chrom == rec.id else region.offset
            p0 = v.pos - 1 - offset
            if id(v) in found or not (0 <= p0 < len(rec.sequence)):
                continue
            found.add(id(v))
            place_variant(v, rec.sequence, p0, length, rec.id)
    for v in variants:
        if v.status == "ok" and id(v) not in found:
            v.status = f"{v.chrom}:{v.pos} is not inside any sequence of {Path(str(fasta)).name}"


def variant_effects(predictor, variants: list[Variant], rc: bool = False) -> dict[str, np.ndarray]:
    """Predict ref and alt windows of every located variant (one batch each side, chunked by the
    predictor). Returns (V,) float32 arrays ref_probability, alt_probability, ref_logit, alt_logit
    (NaN where the variant was not scored; a window with a bad character gets a status)."""
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
    return out


def effect_rows(variants: list[Variant], eff: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One dict per variant, in order: id, chrom, pos, ref, alt, status, and for scored ones the EFFECT_FIELDS
    (delta = alt - ref). The one shape of a variant's result, for the TSV and the service alike."""
    rows = []
    for i, v in enumerate(variants):
        row: dict[str, Any] = {"id": v.name, "chrom": v.chrom, "pos": v.pos, "ref": v.ref, "alt": v.alt,
                               "status": v.status}
        rp, ap, rl, al = (float(eff[k][i]) for k in ("ref_probability", "alt_probability", "ref_logit", "alt_logit"))
        if v.status == "ok" and rp == rp:
            row.update(ref_probability=rp, alt_probability=ap, delta_probability=ap - rp,
                       ref_logit=rl, alt_logit=al, delta_logit=al - rl)
        rows.append(row)
    return rows


def write_effects(fh: IO[str], rows: list[dict[str, Any]]) -> None:
    """TSV (HEADER) of effect_rows in the variants file's order; NA and the reason in `status` for unscored ones."""
    fh.write(HEADER + format_effects(rows))


def format_effects(rows: list[dict[str, Any]]) -> str:
    """TSV lines (no header) of effect_rows, as write_effects writes them: for output written chunk by chunk."""
    lines = []
    for r in rows:
        nums = [f"{r[k]:.7g}" if k in r else "NA" for k in EFFECT_FIELDS]
        lines.append("\t".join([r["id"], r["chrom"], str(r["pos"]), r["ref"], r["alt"], *nums, r["status"]]) + "\n")
    return "".join(lines)


def summarise(variants: Iterable[Variant]) -> tuple[int, list[Variant]]:
    """(number scored, the variants that were not)."""
    vs = list(variants)
    bad = [v for v in vs if v.status != "ok"]
    return len(vs) - len(bad), bad
