"""Scanning an indexed genome: every model-length window at a stride over whole chromosomes or merged regions,
streamed in tiles that overlap by L - stride, so peak memory depends on the tile size, not the chromosome's.

scan_tile is the unit of work (a Tile + a predictor + a genome -> a ScanResult in genome coordinates, chrom = the
genome's name, offset 0), so the bedGraph/BED/TSV writers of FASTA scans and the bigWig writer serve unchanged;
SiteStream merges called sites across tile boundaries exactly as call_sites does on a whole chromosome.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from serving.genome import Genome
from serving.intervals import Interval
from serving.scoring.regions import Region
from serving.scoring.scan import BATCH, ScanResult, call_sites, n_windows, scan_codes

# bp of genome per tile: ~4 MB of one-hot float32 and ~1 s of model time on 2 cores, so per-tile overhead is
# negligible and memory does not grow with chromosomes.
TILE_BP = 1 << 18


@dataclass(frozen=True)
class Tile:
    """`windows` windows at a stride from `start` (0-based, the first window's start) on `chrom` (`size` bp)."""

    chrom: str
    start: int
    windows: int
    size: int

    def end(self, length: int, stride: int) -> int:
        """The last base (exclusive) the tile's windows read."""
        return self.start + (self.windows - 1) * stride + length


def whole_chromosomes(genome: Genome, chroms: Iterable[str] | None = None) -> list[Interval]:
    """Spans to scan: what the genome holds of every chromosome (chroms None) or of the named ones (aliases
    resolved), in the genome's order (Genome.spans: a chromosome held as pieces gives one span per stretch).
    Raises ValueError for a name the genome does not hold."""
    if chroms is None:
        return genome.spans()
    wanted = set()
    for name in chroms:
        found = genome.resolve(name)
        if found is None:
            raise ValueError(genome.unknown(name))
        wanted.add(found)
    return genome.spans(wanted)


def plan_tiles(spans: list[Interval], genome: Genome, length: int, stride: int, tile_bp: int | None = None
               ) -> Iterator[Tile]:
    """Tiles covering every window of every span of at least `length` bp (consecutive tiles of a span overlap
    by length - stride bp, so no window is lost or scored twice). tile_bp: default TILE_BP."""
    tile_bp = tile_bp or TILE_BP
    per_tile = max(1, (max(tile_bp, length) - length) // stride + 1)
    for span in spans:
        total = n_windows(span.end - span.start, length, stride)
        for i in range(0, total, per_tile):
            yield Tile(span.chrom, span.start + i * stride, min(per_tile, total - i), genome.sizes[span.chrom])


def count_windows(spans: list[Interval], length: int, stride: int) -> int:
    return sum(n_windows(s.end - s.start, length, stride) for s in spans)


def scan_tile(predictor, genome: Genome, tile: Tile, stride: int = 1, rc: bool = False, batch_size: int = BATCH,
              on_batch: Callable[[int], None] | None = None) -> ScanResult:
    """Score every window of one tile: its bases read from the genome once as codes (tile bp,) uint8, then scored
    by serving.scoring.scan.scan_codes (the scan engine, else windows of its one-hot). Returns a ScanResult with
    genome starts (W,)."""
    L = predictor.length
    codes = genome.codes(tile.chrom, tile.start, tile.end(L, stride))
    prob, logit = scan_codes(predictor, codes, stride, batch_size, rc, on_batch)
    starts = tile.start + np.arange(tile.windows, dtype=np.int64) * stride
    return ScanResult(tile.chrom, tile.size, L, stride, starts, prob, logit)


def scan_genome(predictor, genome: Genome, spans: list[Interval], stride: int = 1, rc: bool = False,
                tile_bp: int | None = None, on_batch: Callable[[int], None] | None = None) -> Iterator[ScanResult]:
    """ScanResults tile by tile over the spans, in order (the local engine: one tile in memory at a time)."""
    for tile in plan_tiles(spans, genome, predictor.length, stride, tile_bp):
        yield scan_tile(predictor, genome, tile, stride, rc, on_batch=on_batch)


class SiteStream:
    """Sites (windows >= threshold, overlapping or touching ones merged; max probability) called tile by tile:
    add() returns the sites that are complete, flush() the last one. Same sites as call_sites on whole spans."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.open: dict | None = None

    def add(self, result: ScanResult) -> list[dict]:
        done = []
        for site in call_sites(result, self.threshold, Region(result.id)):
            last = self.open
            if last is not None and last["chrom"] == site["chrom"] and site["start"] <= last["end"]:
                last["end"] = max(last["end"], site["end"])
                if site["probability"] > last["probability"]:
                    last["probability"], last["logit"] = site["probability"], site["logit"]
            else:
                if last is not None:
                    done.append(last)
                self.open = site
        return done

    def flush(self) -> list[dict]:
        done, self.open = ([self.open] if self.open else []), None
        return done


def too_short(spans: list[Interval], length: int) -> list[Interval]:
    """The spans no window fits in (shorter than the model's length): reported, not scanned."""
    return [s for s in spans if s.end - s.start < length]
