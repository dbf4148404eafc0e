"""Genomic intervals from BED3+ and ENCODE narrowPeak files, checked against a genome and (for scoring) resized to
the model's window around the summit or centre; a bad line becomes a reject with its line number, never an error.

A line with exactly 10 columns is narrowPeak: column 10 is the summit's offset from the start (-1: none, use the
centre). Coordinates are BED-style (0-based, half-open) on chromosomes; chromosome names go through Genome.resolve
(aliases). Region/parse_region read a FASTA record's place on its chromosome from its id (`chrom:start-end`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, NamedTuple

from serving.fasta import open_text

if TYPE_CHECKING:  # serving.genome imports this module (parse_region): no import back at run time
    from serving.genome import Genome

NARROWPEAK_COLUMNS = 10
COORD_RE = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>[\d,]+)-(?P<end>[\d,]+)$")
CONVENTIONS = ("auto", "bed", "one-based", "none")


@dataclass(frozen=True)
class Region:
    """Where a FASTA record lies: chrom name and the genome 0-based coordinate of its first base."""

    chrom: str
    offset: int = 0
    note: str = ""  # why a coordinate-looking id was not used as coordinates


def parse_region(rid: str, length: int, convention: str = "auto") -> Region:
    """Region of a FASTA record from its id: `chrom:start-end` in bedtools getfasta's 0-based or samtools faidx's
    1-based convention, so a record can be a piece of its chromosome (outputs in genome coordinates).

    'auto' decides from `length`: end - start == length -> 0-based start (bedtools getfasta),
    end - start + 1 == length -> 1-based start (samtools faidx); otherwise the id is kept as the chrom
    name, with a note saying why. 'none': ids are names."""
    if convention not in CONVENTIONS:
        raise ValueError(f"coordinate convention must be one of {CONVENTIONS}, got {convention!r}")
    m = COORD_RE.match(rid) if convention != "none" else None
    if m is None:
        return Region(rid)
    start, end = int(m["start"].replace(",", "")), int(m["end"].replace(",", ""))
    if convention == "auto":
        if end - start == length:
            convention = "bed"
        elif end - start + 1 == length:
            convention = "one-based"
        else:
            return Region(rid, 0, f"{rid}: span {end - start} does not match the sequence length {length}; "
                                  "using the id as the chrom name (pass --coords bed|one-based to force)")
    return Region(m["chrom"], start if convention == "bed" else start - 1)


@dataclass(frozen=True)
class Interval:
    """A place on the genome: chrom (the genome's name), start, end (0-based, half-open), name, and the 1-based
    line of the file it came from (0 when it did not come from a file)."""

    chrom: str
    start: int
    end: int
    name: str = ""
    line: int = 0

    @property
    def label(self) -> str:
        return self.name or f"{self.chrom}:{self.start}-{self.end}"


class LineReject(NamedTuple):
    """A line not used, in the shape serving.scoring.outputs.RejectsFile writes: index = line - 1."""

    index: int
    id: str
    reason: str


def _skip(line: str) -> bool:
    return not line.strip() or line.startswith(("#", "track", "browser"))


def parse_line(cols: list[str]) -> tuple[str, int, int, str, int | None]:
    """(chrom, start, end, name, summit offset or None) of one BED/narrowPeak line; ValueError saying what is
    wrong with it."""
    if len(cols) < 3:
        raise ValueError(f"expected at least 3 columns (chrom, start, end), got {len(cols)}")
    chrom = cols[0].strip()
    try:
        start, end = int(cols[1]), int(cols[2])
    except ValueError:
        raise ValueError(f"start {cols[1]!r} and end {cols[2]!r} must be integers") from None
    if start < 0 or end < start:
        raise ValueError(f"start {start} and end {end}: need 0 <= start <= end")
    name = cols[3].strip() if len(cols) > 3 and cols[3].strip() not in ("", ".") else ""
    summit = None
    if len(cols) == NARROWPEAK_COLUMNS:
        try:
            summit = int(cols[9])
        except ValueError:
            raise ValueError(f"narrowPeak summit (column 10) {cols[9]!r} is not an integer") from None
        if summit == -1:
            summit = None
        elif not 0 <= summit < max(end - start, 1):
            raise ValueError(f"narrowPeak summit {summit} is outside the peak (0 to {end - start - 1})")
    return chrom, start, end, name, summit


def resize(start: int, end: int, summit: int | None, length: int) -> tuple[int, int]:
    """The `length`-bp window around start + summit, else around the centre (start + (end - start) // 2): the
    point sits at index length // 2 of the window."""
    point = start + (summit if summit is not None else (end - start) // 2)
    return point - length // 2, point - length // 2 + length


def read_intervals(path: str | os.PathLike, genome: Genome, length: int | None = None
                   ) -> Iterator[Interval | LineReject]:
    """Stream a BED3+/narrowPeak file (plain or gzip): an Interval per usable line, in file order, resized to
    `length` around its summit/centre (None: as written), or a LineReject saying why (malformed, unknown
    chromosome, past the chromosome's end, window off the chromosome). Header/track/browser/# lines are skipped."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if _skip(line):
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            ident = ":".join(cols[:3]) if len(cols) >= 3 else line[:60]
            try:
                chrom, start, end, name, summit = parse_line(cols)
            except ValueError as exc:
                yield LineReject(lineno - 1, ident, str(exc))
                continue
            ident = name or f"{chrom}:{start}-{end}"
            genome_chrom = genome.resolve(chrom)
            if genome_chrom is None:
                yield LineReject(lineno - 1, ident, genome.unknown(chrom))
                continue
            size = genome.sizes[genome_chrom]
            if end > size:
                yield LineReject(lineno - 1, ident, f"ends at {end:,}, past the end of {genome_chrom} ({size:,} bp"
                                 + (" as far as the genome file holds it)" if genome.is_pieced(genome_chrom) else ")"))
                continue
            if length is not None:
                start, end = resize(start, end, summit, length)
                if start < 0 or end > size:
                    where = "summit" if summit is not None else "centre"
                    yield LineReject(lineno - 1, ident, f"the {length} bp window around its {where} "
                                     f"({genome_chrom}:{start}-{end}) runs off {genome_chrom} (0-{size:,})")
                    continue
            why = genome.missing(genome_chrom, start, end)  # a chromosome held as pieces: inside one of them?
            if why:
                yield LineReject(lineno - 1, ident, why)
                continue
            yield Interval(genome_chrom, start, end, ident, lineno)


def count_lines(path: str | os.PathLike) -> int:
    """Data lines of a BED-like file (for a progress bar's total): one quick pass, plain or gzip."""
    with open_text(path) as fh:
        return sum(1 for line in fh if not _skip(line))


def merge_spans(intervals: list[Interval], genome: Genome, min_length: int = 0) -> list[Interval]:
    """Intervals sorted in the genome's order and merged where they overlap or touch (bedtools merge), each
    first widened around its centre to `min_length` (kept inside the stretch of the chromosome the genome holds
    around it: the chromosome, or its piece): what a scan of regions covers, so that no base gets two values in a
    track."""
    order = {c: i for i, c in enumerate(genome.sizes)}
    spans = []
    for iv in intervals:
        start, end = iv.start, iv.end
        if end - start < min_length:
            lo, hi = next(((s, e) for s, e in genome.stretches[iv.chrom] if s <= start and end <= e),
                          (0, genome.sizes[iv.chrom]))
            start = min(max(lo, start + (end - start) // 2 - min_length // 2), max(lo, hi - min_length))
            end = min(hi, start + min_length)
        spans.append((order[iv.chrom], start, end, iv.chrom))
    spans.sort()
    merged: list[Interval] = []
    for _, start, end, chrom in spans:
        last = merged[-1] if merged else None
        if last is not None and last.chrom == chrom and start <= last.end:
            merged[-1] = Interval(chrom, last.start, max(last.end, end))
        else:
            merged.append(Interval(chrom, start, end))
    return merged
