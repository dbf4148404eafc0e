"""Variant effects (alt - ref, in logit and probability, on the model-length window centred on each
variant) and in silico saturation mutagenesis (every position x every base, as logit change, plus a logo).

Variants: a TSV `chrom pos ref alt [id]` (1-based pos, optional header) or VCF records; `chrom` is a FASTA
record id, or the chrom of a record named `chrom:start-end` (genome coordinates, see serving.scan) that
holds the position. The reference FASTA is streamed: one record in memory at a time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable

import numpy as np

from serving.encoding import ALPHABET, SequenceError, codes_to_onehot, encode_one, to_codes
from serving.fasta import open_text, read_fasta
from serving.scan import parse_region

ALLELE_OK = set("ACGTNacgtn")
HEADER = ("id\tchrom\tpos\tref\talt\tref_probability\talt_probability\tdelta_probability\t"
          "ref_logit\talt_logit\tdelta_logit\tstatus\n")


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


class VariantFileError(ValueError):
    """A variants file that cannot be read (names the line)."""


def read_variants(path: str | os.PathLike) -> list[Variant]:
    """Read a VCF (detected by '##fileformat=VCF' or a '#CHROM' header) or a TSV `chrom pos ref alt [id]`.
    A multi-allelic VCF ALT (A,T) gives one Variant per allele. Malformed lines raise VariantFileError
    naming the line; a variant that merely cannot be scored is kept with a status."""
    out: list[Variant] = []
    vcf = str(path).lower().endswith((".vcf", ".vcf.gz"))
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if line.startswith(("##fileformat=VCF", "#CHROM")):
                vcf = True
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            if not vcf and not out and len(cols) > 1 and not cols[1].strip().isdigit():
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
                elif not ref or not set(ref) <= ALLELE_OK or not alt or not set(alt) <= ALLELE_OK:
                    v.status = f"unsupported allele {ref!r}>{alt!r} (only A, C, G, T, N sequences)"
                out.append(v)
    return out


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
            v.status = f"window around the variant: {str(exc).split(': ', 1)[-1]}"
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


def write_effects(fh: IO[str], variants: list[Variant], eff: dict[str, np.ndarray]) -> None:
    """TSV (HEADER) in the variants file's order; NA and the reason in `status` for unscored ones."""
    fh.write(HEADER)
    for i, v in enumerate(variants):
        rp, ap, rl, al = (float(eff[k][i]) for k in ("ref_probability", "alt_probability", "ref_logit", "alt_logit"))
        nums = (["NA"] * 6 if rp != rp else
                [f"{rp:.7g}", f"{ap:.7g}", f"{ap - rp:.7g}", f"{rl:.7g}", f"{al:.7g}", f"{al - rl:.7g}"])
        fh.write("\t".join([v.name, v.chrom, str(v.pos), v.ref, v.alt, *nums, v.status]) + "\n")


# -- in silico saturation mutagenesis -------------------------------------------------------------
def saturation_mutagenesis(predictor, seq: str, rc: bool = False) -> tuple[np.ndarray, float]:
    """Logit change of every single-base substitution of one sequence of the model's length.

    Returns (delta: (L, 4) float32, logit(mutant with base b at position i) - logit(sequence), 0 where b
    is the reference base; reference logit). All L*4 mutants go through the predictor as one batch."""
    L = predictor.length
    codes = to_codes(seq, 0, predictor.alphabet)
    if len(codes) != L:
        raise SequenceError(f"sequence: length {len(codes)}, the model expects {L}", 0)
    mutants = np.repeat(codes[None], L * 4 + 1, axis=0)  # (4L + 1, L) codes; the last row is the reference
    rows = np.arange(L * 4)
    mutants[rows, rows // 4] = rows % 4
    out = predictor.predict_onehot(codes_to_onehot(mutants), reverse_complement_average=rc)
    ref_logit = float(out["logit"][-1])
    delta = (out["logit"][:-1] - out["logit"][-1]).reshape(L, 4)
    return delta.astype(np.float32), ref_logit


def mean_centred(delta: np.ndarray) -> np.ndarray:
    """(L, 4) -> (L, 4) minus the mean over the 4 bases at each position (the usual ISM logo)."""
    return delta - delta.mean(axis=1, keepdims=True)


def write_mutagenesis(fh: IO[str], delta: np.ndarray, seq: str, alphabet: str = ALPHABET) -> None:
    """TSV: position (1-based), reference base, then one logit-change column per base."""
    fh.write("position\tref\t" + "\t".join(f"delta_logit_{b}" for b in alphabet) + "\n")
    for i, row in enumerate(delta.tolist()):
        fh.write(f"{i + 1}\t{seq[i].upper()}\t" + "\t".join(f"{d:.6g}" for d in row) + "\n")


def plot_mutagenesis(delta: np.ndarray, path: str | os.PathLike, title: str = "") -> Path:
    """Logo PNG of the mean-centred (L, 4) logit changes (training.saliency.plot_logo; no TensorFlow)."""
    from training.saliency import plot_logo

    return plot_logo(mean_centred(delta), path, title=title, ylabel="ISM delta logit (mean-centred)")


def first_record(fasta: str | os.PathLike, rid: str | None = None) -> tuple[str, str]:
    """(id, sequence) of the record `rid` of a FASTA (the first one when rid is None)."""
    for rec in read_fasta(fasta):
        if rid is None or rec.id == rid:
            return rec.id, rec.sequence
    raise ValueError(f"{fasta}: no record {rid!r}" if rid else f"{fasta}: no records")


def summarise(variants: Iterable[Variant]) -> tuple[int, list[Variant]]:
    """(number scored, the variants that were not)."""
    vs = list(variants)
    bad = [v for v in vs if v.status != "ok"]
    return len(vs) - len(bad), bad
