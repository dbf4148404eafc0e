"""Every possible SNV of genome regions (`bindcnn variants --all-snvs`): the 3 alternative bases of each position,
each scored on the window centred on it (the VCF definition of serving.scoring.variants), as a tabix-ready TSV.

The regions are cut into tiles of centres (TILE); each tile reads its bases plus the window's reach on both sides
once and hands them to serving.snv_scan.snv_logits (incremental where the model folder has layers.npz), so memory
depends on the tile, not on the region. Rows come out sorted (chromosome blocks in genome order, positions
ascending, regions merged first), as `tabix -s1 -b2 -e2` needs; a bigWig of each position's strongest signed
delta_logit can be written beside them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

import numpy as np

from serving.bgzf_out import BgzfFile
from serving.dna import sigmoid
from serving.genome import Genome
from serving.intervals import Interval
from serving.scoring.pvalues import predictor_p_values
from serving.snv_scan import snv_logits

TILE = 1 << 16  # centres per tile: ~13 MB of TSV text, and the engine's work per call is well above its overhead
# ISA-L level of the BGZF blocks (0-3). On the 2-core AMD EPYC, 20 MB of this module's rows in 64 KB blocks: level 1
# 336 MB/s to 35.5% of the text, level 2 321 MB/s to 35.6%, level 0 353 MB/s to 44%; zlib's level 1 (Biopython's
# writer, before) about half as fast (serving/bgzf_out.py has the whole-file sizes).
COMPRESSLEVEL = 1
HEADER = "#chrom\tpos\tref\talt\tref_probability\talt_probability\tdelta_logit\tp_value\n"
OTHERS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]], np.intp)  # (4, 3): each base's alternatives


@dataclass
class TileEffects:
    """The SNVs of one tile of centres on `chrom`: positions (P,) int64 (0-based) whose reference base is A/C/G/T
    (ref (P,) uint8 codes 0-3); ref_logit (P,) float32; alt_logit (P, 3) float32 and p_value (P, 3) float64 (NaN: no
    null) of the three other bases in A, C, G, T order; bases: the tile's positions, skipped: those with an N or
    IUPAC reference (no rows)."""

    chrom: str
    positions: np.ndarray
    ref: np.ndarray
    ref_logit: np.ndarray
    alt_logit: np.ndarray
    p_value: np.ndarray
    bases: int
    skipped: int

    @property
    def delta(self) -> np.ndarray:
        """(P, 3) float64 alt - ref logits (as serving.scoring.variants computes a variant's delta)."""
        return self.alt_logit.astype(np.float64) - self.ref_logit.astype(np.float64)[:, None]

    def strongest(self) -> np.ndarray:
        """(P,) float32: each position's delta_logit of largest magnitude, with its sign."""
        delta = self.delta
        return delta[np.arange(len(delta)), np.abs(delta).argmax(axis=1)].astype(np.float32)


def centre_spans(genome: Genome, spans: list[Interval], length: int) -> list[Interval]:
    """The positions of each span (merged, genome order) whose centred window of `length` (starting at the
    position - length // 2) lies inside the stretch of the chromosome the genome holds around it: (chrom, first
    centre, end) intervals, empty ones dropped."""
    out = []
    for span in spans:
        lo, hi = next(((s, e) for s, e in genome.stretches[span.chrom] if s <= span.start and span.end <= e),
                      (0, genome.sizes[span.chrom]))
        start, end = max(span.start, lo + length // 2), min(span.end, hi - length + length // 2 + 1)
        if end > start:
            out.append(Interval(span.chrom, start, end))
    return out


def tile_effects(predictor, genome: Genome, chrom: str, start: int, end: int, rc: bool = False) -> TileEffects:
    """Every SNV at the centres start..end-1 of chrom (each centred window inside the genome): the tile's bases
    read once (L // 2 before, L - L // 2 - 1 after), then serving.snv_scan.snv_logits and the p-values."""
    L, n = predictor.length, end - start
    codes = genome.codes(chrom, start - L // 2, end - 1 - L // 2 + L)
    keep = np.flatnonzero(codes[L // 2 : L // 2 + n] < 4)
    ref = codes[L // 2 + keep]
    if len(keep):
        ref_logit, logits = snv_logits(predictor, codes, keep + L // 2, rc)
    else:
        ref_logit, logits = np.zeros(0, np.float32), np.zeros((0, 4), np.float32)
    alt_logit = np.take_along_axis(np.asarray(logits, np.float32), OTHERS[ref], axis=1)
    effects = TileEffects(chrom, start + keep.astype(np.int64), ref, np.asarray(ref_logit, np.float32), alt_logit,
                          np.zeros((len(keep), 3)), n, n - len(keep))
    effects.p_value = predictor_p_values(predictor, effects.delta.ravel(), rc).reshape(-1, 3)
    return effects


def all_snv_effects(predictor, genome: Genome, centres: list[Interval], rc: bool = False, tile: int = TILE
                    ) -> Iterator[TileEffects]:
    """TileEffects tile by tile over centre_spans(...) intervals, in order (one tile in memory at a time)."""
    for span in centres:
        for start in range(span.start, span.end, tile):
            yield tile_effects(predictor, genome, span.chrom, start, min(start + tile, span.end), rc)


def format_rows(effects: TileEffects, alphabet: str = "ACGT") -> memoryview:
    """TSV lines (bytes-like) under HEADER: 3 per position (alternatives in A, C, G, T order), pos 1-based; numbers as
    the shortest text that reads back as the same float32 (0.12345679, 1e-7), NA where the model has no null.
    Written by Arrow's CSV writer (C++, outside the GIL): Python's '%.7g' wrote ~0.43M rows/s on the 2-core EPYC,
    slower than the engine scores them (issue 24, commit message). Into Arrow's own buffer, not a Python file: the
    writer would take the GIL back for every write to one, and wait for it while the engine's threads hold it (one
    tile took 1.3 s instead of 0.11 s beside a busy Python thread; 0.28 s with Arrow's buffer)."""
    n = len(effects.positions)
    if not n:
        return memoryview(b"")
    import pyarrow as pa
    import pyarrow.csv as pcsv

    letters = pa.array(list(alphabet))
    p = effects.p_value.ravel().astype(np.float32)
    table = pa.table({
        "chrom": pa.DictionaryArray.from_arrays(np.zeros(3 * n, np.int8), pa.array([effects.chrom])),
        "pos": np.repeat(effects.positions + 1, 3),
        "ref": pa.DictionaryArray.from_arrays(np.repeat(effects.ref, 3).astype(np.int8), letters),
        "alt": pa.DictionaryArray.from_arrays(OTHERS[effects.ref].ravel().astype(np.int8), letters),
        "ref_probability": np.repeat(sigmoid(effects.ref_logit), 3).astype(np.float32),
        "alt_probability": sigmoid(effects.alt_logit.ravel()).astype(np.float32),
        "delta_logit": effects.delta.ravel().astype(np.float32),
        "p_value": pa.array(p, mask=np.isnan(p))})
    out = pa.BufferOutputStream()
    pcsv.write_csv(table, out, pcsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none",
                                                 null_string="NA"))
    return memoryview(out.getvalue())


def is_bgzf_name(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith((".gz", ".bgz"))


class EffectsFile:
    """The all-SNVs TSV being written: HEADER, then rows tile by tile; BGZF when the name ends in .gz or .bgz
    (serving.bgzf_out at COMPRESSLEVEL, so tabix indexes it; the BGZF end-of-file block on close), else plain."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self.bgzf = is_bgzf_name(path)
        self.fh: IO[bytes] = BgzfFile(self.path, COMPRESSLEVEL) if self.bgzf else open(self.path, "wb")  # type: ignore
        self.write(HEADER)

    def write(self, data: bytes | memoryview | str) -> None:
        self.fh.write(data.encode() if isinstance(data, str) else data)

    def close(self) -> None:
        self.fh.close()


def add_strongest(bigwig, effects: TileEffects) -> int:
    """Write each position's strongest signed delta_logit (TileEffects.strongest) to a
    serving.scoring.bigwig.BigWigWriter, one value per base, runs of positions split where an N reference left a
    gap. Returns the bases written."""
    pos = effects.positions
    if not len(pos):
        return 0
    values = effects.strongest()
    breaks = np.flatnonzero(np.diff(pos) != 1) + 1
    for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(pos)]):
        bigwig.add_values(effects.chrom, int(pos[lo]), values[lo:hi])
    return len(pos)


@dataclass
class Summary:
    snvs: int = 0
    positions: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.snvs / max(self.seconds, 1e-9)


def write_all_snvs(predictor, genome: Genome, centres: list[Interval], out: EffectsFile, bigwig=None,
                   rc: bool = False, on_tile: Callable[[int], None] | None = None, tile: int = TILE) -> Summary:
    """Score and write every SNV of the centre spans (centre_spans), tile by tile: rows to `out`, the strongest
    delta per base to `bigwig` (a BigWigWriter, or None); on_tile(bases) after each tile. Returns the counts.
    The next tile is scored while this one is written (Arrow and zlib work outside the GIL): 1.26x the SNVs/s of
    scoring and writing in turn, at the same CPU time, on a 400 kb chromosome (2-core EPYC, medians of 3 rounds)."""
    import time

    from concurrent.futures import ThreadPoolExecutor

    summary, t0 = Summary(), time.perf_counter()
    tiles = all_snv_effects(predictor, genome, centres, rc, tile)
    with ThreadPoolExecutor(1, thread_name_prefix="bindcnn-next-tile") as ahead:
        _write_tiles(_ahead(tiles, ahead), predictor, out, bigwig, on_tile, summary)
    summary.seconds = time.perf_counter() - t0
    return summary


def _ahead(items: Iterator[TileEffects], pool) -> Iterator[TileEffects]:
    """items in order, the next one computed on `pool`'s thread while the caller writes this one (the engine's
    numpy and Arrow's and zlib's C code run outside the GIL, so scoring and writing overlap)."""
    end = object()
    upcoming = pool.submit(next, items, end)
    while (item := upcoming.result()) is not end:
        upcoming = pool.submit(next, items, end)
        yield item


def _write_tiles(tiles: Iterator[TileEffects], predictor, out: EffectsFile, bigwig, on_tile, summary: Summary
                 ) -> None:
    for effects in tiles:
        out.write(format_rows(effects, predictor.alphabet))
        if bigwig is not None:
            add_strongest(bigwig, effects)
        summary.positions += len(effects.positions)
        summary.snvs += 3 * len(effects.positions)
        summary.skipped += effects.skipped
        if on_tile is not None:
            on_tile(effects.bases)


def check_args(args) -> None:
    """Refuse, before a model loads, what `variants --all-snvs` cannot do (ValueError saying what to run instead:
    exit 2); without --all-snvs, refuse its own options."""
    if not getattr(args, "all_snvs", False):
        given = [f"--{name}" for name in ("regions", "chroms", "bigwig") if getattr(args, name, None)]
        if given:
            raise ValueError(f"{', '.join(given)} go with --all-snvs (every possible SNV of the regions); the "
                             "variants of a file are scored with --vcf V.vcf or --variants V.tsv alone")
        return
    example = "bindcnn variants --genome G.fa --all-snvs --regions R.bed -o effects.tsv.gz"
    if args.vcf or args.variants:
        raise ValueError("--all-snvs scores every possible SNV of --regions/--chroms, --vcf/--variants the variants "
                         "listed in a file: run them as two commands (drop --all-snvs to score the file)")
    if args.vcf_out or args.pass_only:
        raise ValueError("--vcf-out and --pass-only go with --vcf; --all-snvs writes a TSV (-o effects.tsv.gz)")
    if args.genome and args.fasta:
        raise ValueError("give --genome or --fasta (the same: an indexed FASTA read by interval), not both")
    if not (args.genome or args.fasta):
        raise ValueError(f"--all-snvs needs --genome G.fa (an indexed FASTA, plain or bgzip), e.g. {example}")
    if not (args.regions or args.chroms):
        raise ValueError("--all-snvs needs --regions R.bed or --chroms chr21,...: every SNV of a whole genome is "
                         f"billions of rows; e.g. {example}")
    if args.regions and args.chroms:
        raise ValueError("give --regions or --chroms, not both")
    if not args.output or args.output == "-":
        raise ValueError("--all-snvs needs -o FILE (three rows per base: effects.tsv.gz for a bgzip file that "
                         f"tabix indexes, or .tsv), e.g. {example}")
    models = getattr(args, "models", None) or [getattr(args, "model", None)]
    if len(models) > 1:
        raise ValueError("--all-snvs scores one model per run: run it once per --model, each with its own -o")
    if getattr(args, "url", None):
        raise ValueError("--all-snvs runs the model in this process (--model DIR, the incremental engine of its "
                         "layers.npz), not through a service: drop --url")
    if getattr(args, "engine", "local") != "local":
        raise ValueError("--all-snvs runs here (--engine local); Ray is not supported for it: drop --engine ray "
                         "(to share the work across machines, give each its own --chroms)")
    if getattr(args, "explain", 0):
        raise ValueError("--explain explains the strongest variants of a VCF, not of --all-snvs: pick the SNVs from "
                         "its output, write them as a VCF and run variants --vcf V.vcf --explain N")
    inputs = [p for p in (args.genome, args.fasta, args.regions) if p]
    for flag, path in (("-o", args.output), ("--bigwig", getattr(args, "bigwig", None))):
        if path and any(_same(path, p) for p in inputs):
            raise ValueError(f"{flag} {path} would overwrite an input; give it another name")
    if args.bigwig and _same(args.bigwig, args.output):
        raise ValueError(f"--bigwig and -o are the same file ({args.output}); give them different names")


def _same(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return Path(a).resolve() == Path(b).resolve()


__all__ = ["COMPRESSLEVEL", "HEADER", "TILE", "EffectsFile", "Summary", "TileEffects", "add_strongest",
           "all_snv_effects", "centre_spans", "check_args", "format_rows", "tile_effects", "write_all_snvs"]
