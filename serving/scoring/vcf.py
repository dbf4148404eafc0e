"""Variants from VCF/BCF (cyvcf2) or a TSV scored on an indexed genome in chunks, one row per ALT allele, and the
annotated VCF: the input's records with INFO fields for ref/alt probability and delta logit, declared in the header.

score_variant_chunk is the unit of work (Variants + a predictor + a genome -> effect rows, as
serving.scoring.variants.effect_rows); memory holds one chunk of records and windows at a time, whatever the file.
Symbolic alleles (<DEL>), '*', breakends and missing ALTs keep their row with a status saying why they were not scored.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

from serving.dna import SequenceError, codes_to_onehot, genome_codes
from serving.genome import Genome
from serving.scoring.variants import Variant, allele_problem, effect_rows, place_variant

CHUNK = 4096  # VCF records read, cut and scored at a time
INFO_FIELDS = (  # (ID, Number, Description) of the INFO fields the annotated VCF adds
    ("BINDCNN_REF_PROB", "1", "bindcnn probability of the reference window (model length, centred on the variant)"),
    ("BINDCNN_ALT_PROB", "A", "bindcnn probability of the window with each ALT allele ('.' where not scored)"),
    ("BINDCNN_DELTA_LOGIT", "A", "bindcnn logit change alt - ref for each ALT allele ('.' where not scored)"),
)


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


def count_records(path: str | os.PathLike) -> int | None:
    """Records in a VCF, for a progress bar's total: from its index (.tbi/.csi) when there is one, else one
    quick pass over a text VCF (plain or gzip); None for an unindexed BCF."""
    p = str(path)
    if any(Path(p + ext).exists() for ext in (".tbi", ".csi")):
        from cyvcf2 import VCF

        try:
            return int(VCF(p).num_records)
        except Exception:  # an index cyvcf2 cannot use: count another way
            pass
    with open(p, "rb") as fh:
        if fh.read(3) == b"BCF":
            return None
    from serving.fasta import open_text

    with open_text(p) as fh:
        return sum(1 for line in fh if line[:1] not in ("#", "\n", ""))


def open_vcf(path: str | os.PathLike, annotate: bool = False):
    """A cyvcf2 reader; with annotate=True the INFO_FIELDS are declared in its header."""
    from cyvcf2 import VCF

    try:
        vcf = VCF(str(path))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable VCF/BCF ({exc})") from None
    if annotate:
        for fid, number, desc in INFO_FIELDS:
            vcf.add_info_to_header({"ID": fid, "Number": number, "Type": "Float", "Description": desc})
    return vcf


def vcf_chunks(vcf, chunk: int = CHUNK, pass_only: bool = False, keep_text: bool = False,
               skipped: list[int] | None = None) -> Iterator[list[VcfRecord]]:
    """Chunks of `chunk` VcfRecords from a cyvcf2 reader, in file order. pass_only: records whose FILTER is
    not PASS/'.' are skipped (counted in skipped[0]). Variant.line is the record's line in a text VCF."""
    header_lines = vcf.raw_header.count("\n") - (len(INFO_FIELDS) if keep_text else 0)
    batch: list[VcfRecord] = []
    for k, rec in enumerate(vcf, start=1):
        if pass_only and rec.FILTER is not None:
            if skipped is not None:
                skipped[0] += 1
            continue
        vid = rec.ID or ""
        alts = rec.ALT or ["."]
        vs = []
        for alt in alts:
            v = Variant(rec.CHROM, rec.POS, rec.REF, alt, vid if len(alts) == 1 or not vid else f"{vid}:{alt}",
                        header_lines + k)
            v.status = alt_status(rec.REF, alt)
            vs.append(v)
        batch.append(VcfRecord(vs, str(rec) if keep_text else ""))
        if len(batch) == chunk:
            yield batch
            batch = []
    if batch:
        yield batch


def place_in_genome(v: Variant, genome: Genome, length: int) -> None:
    """Check v.ref against the genome and cut v's ref/alt windows (serving.scoring.variants.place_variant on the
    stretch the window needs, read by interval), or set v.status (unknown chromosome, past its end, mismatch)."""
    chrom = genome.resolve(v.chrom)
    if chrom is None:
        v.status = genome.unknown(v.chrom)
        return
    size, p0 = genome.sizes[chrom], v.pos - 1
    if not 0 <= p0 < size:
        v.status = f"position {v.pos:,} is outside {chrom} (1-{size:,})"
        return
    start = min(max(p0 - length // 2, 0), max(size - length, 0))
    stretch = genome.fetch(chrom, start, min(size, start + length + len(v.ref)))
    place_variant(v, stretch, p0 - start, length, chrom)


def score_variant_chunk(predictor, genome: Genome, variants: list[Variant], rc: bool = False
                        ) -> list[dict[str, Any]]:
    """The unit of work: place each variant on the genome, score every ref and alt window in one predictor call
    (x: (2 * scored, L, 4) float32), and return effect_rows (one dict per variant, in order). Windows holding
    IUPAC ambiguity codes are scored with them as N and counted in genome.ambiguous."""
    L = predictor.length
    for v in variants:
        if v.status == "ok":
            place_in_genome(v, genome, L)
    keep = [i for i, v in enumerate(variants) if v.status == "ok" and v.ref_window is not None]
    codes, good = window_codes([variants[i] for i in keep], L, predictor.alphabet, genome)
    eff = {k: np.full(len(variants), np.nan, np.float32)
           for k in ("ref_probability", "alt_probability", "ref_logit", "alt_logit")}
    if good.any():
        both = predictor.predict_onehot(codes_to_onehot(codes[np.concatenate([good, good])]),
                                        reverse_complement_average=rc)
        idx, k = np.asarray(keep)[good], int(good.sum())
        eff["ref_probability"][idx], eff["alt_probability"][idx] = both["probability"][:k], both["probability"][k:]
        eff["ref_logit"][idx], eff["alt_logit"][idx] = both["logit"][:k], both["logit"][k:]
    return effect_rows(variants, eff)


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


def _num(x: Any) -> str:
    return "." if x is None else f"{x:.6g}"


def annotated_line(text: str, rows: list[dict[str, Any]]) -> str:
    """A VCF record line with the INFO_FIELDS added from its rows (one per ALT, in order); unchanged when no
    ALT was scored."""
    scored = [r for r in rows if "alt_probability" in r]
    if not scored:
        return text if text.endswith("\n") else text + "\n"
    cols = text.rstrip("\n").split("\t")
    info = [f"BINDCNN_REF_PROB={_num(scored[0]['ref_probability'])}",
            "BINDCNN_ALT_PROB=" + ",".join(_num(r.get("alt_probability")) for r in rows),
            "BINDCNN_DELTA_LOGIT=" + ",".join(_num(r.get("delta_logit")) for r in rows)]
    cols[7] = ";".join(info) if cols[7] in ("", ".") else cols[7] + ";" + ";".join(info)
    return "\t".join(cols) + "\n"


class VcfOut:
    """The annotated VCF: the reader's header (with the INFO_FIELDS) and record lines; bgzip when the name ends in
    .gz or .bgz (Biopython's BGZF writer, so tabix/bcftools/IGV can index it), else plain text."""

    def __init__(self, path: str | os.PathLike, vcf):
        self.path = str(path)
        if self.path.lower().endswith(".bcf"):
            raise ValueError(f"{path}: write the annotated VCF as .vcf or .vcf.gz (bcftools view -Ob makes BCF)")
        if self.path.lower().endswith((".gz", ".bgz")):
            try:
                from Bio import bgzf
            except ImportError:
                raise ValueError("writing a bgzip VCF needs Biopython (pip install biopython); or name the "
                                 "output .vcf") from None
            self.fh: IO[bytes] = bgzf.BgzfWriter(self.path, "wb")  # type: ignore[assignment]
        else:
            self.fh = open(self.path, "wb")
        self.fh.write(vcf.raw_header.encode())

    def write(self, records: list[VcfRecord], rows: list[dict[str, Any]]) -> None:
        """Write a chunk: records in order; rows are their variants' effect rows, flattened in the same order."""
        out, i = [], 0
        for rec in records:
            n = len(rec.variants)
            out.append(annotated_line(rec.text, rows[i : i + n]))
            i += n
        self.fh.write("".join(out).encode())

    def close(self) -> None:
        self.fh.close()
