"""Variants from VCF or BCF, one Variant per ALT allele, in chunks, placed on an indexed genome and scored chunk by
chunk: score_variant_chunk is the unit of work the engines run (Variants + a predictor + a genome -> effect rows,
as serving.scoring.variants.effect_rows); memory holds one chunk of records and windows at a time.

A text VCF (plain, gzip or bgzip) is read line by line here, so every message names its line in the file; a BCF
(bgzip'd binary, indexed or not) through cyvcf2, so messages name its record number. Symbolic alleles (<DEL>), '*',
breakends and missing ALTs keep their row with a status saying why they were not scored. A malformed record (POS
not a number, too few columns) raises VariantFileError naming its line, after the records before it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from serving.dna import SequenceError, codes_to_onehot, genome_codes, sigmoid
from serving.fasta import open_bytes, open_text
from serving.genome import Genome
from serving.scoring.pvalues import predictor_p_values
from serving.scoring.shared_snvs import SharedStretch, shared_logits, shared_stretches
from serving.snv_scan import engine_layers
from serving.scoring.variants import (Variant, VariantFileError, allele_problem, effect_rows, place_variant,
                                      position_problem, window_off, window_span)

CHUNK = 4096  # VCF records read, cut and scored at a time
VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")


def alt_status(ref: str, alt: str) -> str:
    """'ok', or why a VCF ALT allele is not scored: missing, '*', symbolic, breakend, or not A/C/G/T/N."""
    if alt in ("", "."):
        return "no ALT allele ('.'): nothing to score"
    if alt == "*":
        return "spanning deletion '*' (an overlapping deletion, scored in its own record): not scored"
    if alt.startswith("<"):
        return f"symbolic allele {alt}: not scored (the model needs the allele's sequence)"
    if "[" in alt or "]" in alt or alt.startswith(".") or alt.endswith("."):
        return f"breakend {alt}: not scored (a rearrangement, not a sequence change)"
    return allele_problem(ref, alt) or "ok"


@dataclass
class VcfRecord:
    """One VCF record: its variants (one per ALT, or one with a status when there is no ALT) and, when an
    annotated VCF is written, its text line."""

    variants: list[Variant]
    text: str = ""


def is_bcf(path: str | os.PathLike) -> bool:
    """True for a BCF (its decompressed bytes start with 'BCF'), whatever its name."""
    try:
        with open_bytes(path) as fh:
            return fh.read(3) == b"BCF"
    except (OSError, EOFError, ValueError):
        return False


def is_vcf(path: str | os.PathLike) -> bool:
    """True for a VCF or BCF (by its name, or its first line), False for a TSV of variants."""
    if str(path).lower().endswith(VCF_SUFFIXES) or is_bcf(path):
        return True
    try:
        with open_text(path) as fh:
            return fh.readline().startswith(("##fileformat=VCF", "#CHROM"))
    except (OSError, EOFError, UnicodeDecodeError, ValueError):
        return False


def count_records(path: str | os.PathLike) -> int | None:
    """Records in a VCF (or data lines of a TSV), for a progress bar's total: from its index (.tbi/.csi) when
    there is one, else one quick pass over the text (plain or gzip); None for an unindexed BCF."""
    p = str(path)
    if any(Path(p + ext).exists() for ext in (".tbi", ".csi")):
        from cyvcf2 import VCF

        try:
            return int(VCF(p).num_records)
        except Exception:  # an index cyvcf2 cannot use: count another way
            pass
    if is_bcf(p):
        return None
    try:
        with open_text(p) as fh:
            return sum(1 for line in fh if line.strip() and not line.startswith("#"))
    except UnicodeDecodeError:
        return None


def parse_record(line: str, lineno: int, path: str) -> tuple[VcfRecord, bool]:
    """(the VcfRecord of one text VCF data line, whether its FILTER is PASS or '.'); VariantFileError naming the
    line when it is not a VCF record."""
    cols = line.split("\t")
    if len(cols) < 5:
        raise VariantFileError(f"{path}, line {lineno}: a VCF record has tab-separated CHROM, POS, ID, REF, ALT "
                               f"(QUAL, FILTER, INFO, ...); this line has {len(cols)} column(s): {line[:80]!r}")
    chrom, pos, vid, ref, alts = cols[0], cols[1], cols[2], cols[3], cols[4].split(",")
    try:
        ipos = int(pos)
    except ValueError:
        raise VariantFileError(f"{path}, line {lineno}: POS {pos!r} is not a number") from None
    vid = "" if vid == "." else vid
    variants = []
    for alt in alts:
        v = Variant(chrom, ipos, ref, alt, vid if len(alts) == 1 or not vid else f"{vid}:{alt}", lineno)
        v.status = position_problem(ipos) or alt_status(ref, alt)
        variants.append(v)
    return VcfRecord(variants), (cols[6] if len(cols) > 6 else ".") in ("PASS", ".", "")


class VcfInput:
    """A VCF (text: plain, gzip or bgzip) or BCF to read. header: its header text (for the annotated copy);
    unit: what Variant.line counts ("line", or "record" in a BCF); records() streams its VcfRecords."""

    def __init__(self, path: str | os.PathLike):
        self.path, self.bcf = str(path), is_bcf(path)
        self.unit = "record" if self.bcf else "line"
        if self.bcf:
            self.header = self._cyvcf2().raw_header
            return
        lines = []
        try:
            with open_text(self.path) as fh:
                for line in fh:
                    if not line.startswith("#"):
                        break
                    lines.append(line if line.endswith("\n") else line + "\n")
        except UnicodeDecodeError as exc:
            raise VariantFileError(f"{path}: the header is not UTF-8 text ({exc.reason}); not a VCF?") from None
        self.header = "".join(lines)

    def _cyvcf2(self):
        from cyvcf2 import VCF

        try:
            return VCF(self.path)
        except (OSError, ValueError) as exc:
            raise VariantFileError(f"{self.path}: not a readable BCF ({exc})") from None

    def records(self, pass_only: bool = False, keep_text: bool = False, skipped: list[int] | None = None
                ) -> Iterator[VcfRecord]:
        """Every record, in file order. pass_only: records whose FILTER is not PASS/'.' are skipped (counted in
        skipped[0]); keep_text: each record keeps its line for the annotated copy."""
        for rec, passed in (self._bcf_records(keep_text) if self.bcf else self._text_records(keep_text)):
            if pass_only and not passed:
                if skipped is not None:
                    skipped[0] += 1
                continue
            yield rec

    def _text_records(self, keep_text: bool) -> Iterator[tuple[VcfRecord, bool]]:
        lineno = 0
        with open_text(self.path) as fh:
            try:
                for lineno, line in enumerate(fh, start=1):
                    if line.startswith("#") or not line.strip():
                        continue
                    rec, passed = parse_record(line.rstrip("\r\n"), lineno, self.path)
                    if keep_text:
                        rec.text = line.rstrip("\r\n") + "\n"
                    yield rec, passed
            except UnicodeDecodeError as exc:
                raise VariantFileError(f"{self.path}, after line {lineno}: bytes that are not UTF-8 text "
                                       f"({exc.reason}); is it a BCF or another binary file?") from None

    def _bcf_records(self, keep_text: bool) -> Iterator[tuple[VcfRecord, bool]]:
        it, k = iter(self._cyvcf2()), 0
        while True:
            try:
                rec = next(it)
            except StopIteration:
                return
            except Exception as exc:  # cyvcf2 raises a bare Exception ("error parsing variant ...")
                raise VariantFileError(f"{self.path}, record {k + 1}: cannot be read ({exc})") from None
            k += 1
            vid, alts = rec.ID or "", rec.ALT or ["."]
            variants = []
            for alt in alts:
                v = Variant(rec.CHROM, rec.POS, rec.REF, alt, vid if len(alts) == 1 or not vid else f"{vid}:{alt}", k)
                v.status = alt_status(rec.REF, alt)
                variants.append(v)
            yield VcfRecord(variants, str(rec) if keep_text else ""), rec.FILTER is None


def chunked(records: Iterable[VcfRecord], size: int = CHUNK) -> Iterator[list[VcfRecord]]:
    """Lists of `size` records in order. When reading fails part-way (VariantFileError), the records read before
    the failure come first, so their rows are written, then the error."""
    batch: list[VcfRecord] = []
    try:
        for rec in records:
            batch.append(rec)
            if len(batch) == size:
                yield batch
                batch = []
    except VariantFileError as exc:
        if batch:
            yield batch
        raise exc
    if batch:
        yield batch


def place_in_genome(v: Variant, genome: Genome, length: int) -> None:
    """Check v.ref against the genome and cut v's centred ref/alt windows (serving.scoring.variants.place_variant
    on the stretch the windows need, read by interval), or set v.status: unknown chromosome, position outside it,
    ref mismatch, or window_off_chromosome (the centred window is not all inside what the genome holds)."""
    chrom = genome.resolve(v.chrom)
    if chrom is None:
        v.status = genome.unknown(v.chrom)
        return
    size, p0 = genome.sizes[chrom], v.pos - 1
    if not 0 <= p0 < size:
        v.status = f"position {v.pos:,} is outside {chrom} (1-{size:,})"
        return
    why = genome.missing(chrom, p0, p0 + 1)
    if why:
        v.status = f"position {v.pos:,} is not in the genome file: {why}"
        return
    start, end = window_span(p0, v.ref, v.alt, length)
    off = genome.missing(chrom, start, end)
    if off is None:
        place_variant(v, genome.fetch(chrom, start, end), p0 - start, length, chrom)
        return
    ref_end = min(p0 + len(v.ref), size)
    have = genome.fetch(chrom, p0, ref_end) if genome.missing(chrom, p0, ref_end) is None else ""
    if have.upper() != v.ref.upper():  # a wrong reference is the first thing to say
        place_variant(v, have, 0, length, chrom)
    else:
        v.status = window_off(length, off)


def score_variant_chunk(predictor, genome: Genome, variants: list[Variant], rc: bool = False
                        ) -> list[dict[str, Any]]:
    """The unit of work: place each variant on the genome, score SNVs that share a stretch together
    (serving.scoring.shared_snvs) and every other ref and alt window in one predictor call (x: (2 * scored, L, 4)
    float32), and return effect_rows (one dict per variant, in order; p-values against the
    predictor's null, serving.scoring.pvalues). Windows holding
    IUPAC ambiguity codes are scored with them as N and counted in genome.ambiguous."""
    placed = place_chunk(genome, variants, predictor.length, predictor.alphabet)
    return effect_rows(variants, chunk_effects(predictor, len(variants), placed, rc))


@dataclass
class PlacedChunk:
    """A chunk's variants placed on the genome, their windows cut once for any number of models: keep (indices of
    the placed variants), codes ((2 * len(keep), L) uint8: reference windows, then alternative ones), good
    (len(keep),) bool (windows without a bad character), shared (serving.scoring.shared_snvs: SNV stretches a
    model with the incremental engine scores together instead of window by window)."""

    keep: list[int]
    codes: np.ndarray
    good: np.ndarray
    shared: list[SharedStretch]


def place_chunk(genome: Genome, variants: list[Variant], length: int, alphabet: str) -> PlacedChunk:
    """Place a chunk's variants on the genome and cut their windows' codes (PlacedChunk)."""
    for v in variants:
        if v.status == "ok":
            place_in_genome(v, genome, length)
    keep = [i for i, v in enumerate(variants) if v.status == "ok" and v.ref_window is not None]
    codes, good = window_codes([variants[i] for i in keep], length, alphabet, genome)
    placed = [i for i, g in zip(keep, good) if g]
    return PlacedChunk(keep, codes, good, shared_stretches(genome, variants, placed, length, alphabet))


def chunk_effects(predictor, n: int, placed: PlacedChunk, rc: bool = False) -> dict[str, np.ndarray]:
    """One model's effects on a placed chunk of n variants: (n,) arrays for effect_rows. SNVs of shared stretches
    by the incremental engine where the model has one (serving.snv_scan), every other variant window by window."""
    eff = {k: np.full(n, np.nan, np.float32) for k in ("ref_probability", "alt_probability", "ref_logit", "alt_logit")}
    good = placed.good.copy()
    if placed.shared and engine_layers(predictor) is not None:
        position = {i: j for j, i in enumerate(placed.keep)}
        members, ref, alt = shared_logits(predictor, placed.shared, rc)
        eff["ref_logit"][members], eff["alt_logit"][members] = ref, alt
        eff["ref_probability"][members], eff["alt_probability"][members] = sigmoid(ref), sigmoid(alt)
        good[[position[i] for i in members]] = False  # scored: not window by window
    if good.any():
        both = predictor.predict_onehot(codes_to_onehot(placed.codes[np.concatenate([good, good])]),
                                        reverse_complement_average=rc)
        idx, k = np.asarray(placed.keep)[good], int(good.sum())
        eff["ref_probability"][idx], eff["alt_probability"][idx] = both["probability"][:k], both["probability"][k:]
        eff["ref_logit"][idx], eff["alt_logit"][idx] = both["logit"][:k], both["logit"][k:]
    eff["p_value"] = predictor_p_values(predictor, eff["alt_logit"] - eff["ref_logit"], rc)
    return eff


def window_codes(variants: list[Variant], length: int, alphabet: str, genome: Genome
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the variants' ref windows then alt windows: ((2n, L) uint8, good (n,) bool). One vectorised pass;
    variant by variant only when a window holds a non-nucleotide character (that variant gets the status)."""
    n = len(variants)
    try:
        ref, ambiguous = genome_codes("".join(v.ref_window for v in variants), alphabet, "reference windows")
        alt, _ = genome_codes("".join(v.alt_window for v in variants), alphabet, "alternative windows")
        genome.ambiguous += ambiguous
        return np.concatenate([ref, alt]).reshape(2 * n, length), np.ones(n, bool)
    except SequenceError:
        pass
    codes, good = np.full((2 * n, length), 4, np.uint8), np.ones(n, bool)
    for j, v in enumerate(variants):
        try:
            codes[j], ambiguous = genome_codes(v.ref_window, alphabet, f"window of {v.name}")
            codes[n + j], _ = genome_codes(v.alt_window, alphabet, f"window of {v.name}")
            genome.ambiguous += ambiguous
        except SequenceError as exc:
            v.status, good[j] = str(exc), False
    return codes, good
