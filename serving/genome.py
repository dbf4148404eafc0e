"""An indexed reference genome (FASTA plain or bgzip, read with pyfaidx): chromosome sizes, names resolved through
aliases (chr1 <-> 1, chrM <-> MT) and random access per interval, so the whole genome is never in memory.

One coordinate system: chromosome coordinates, 0-based, half-open. A record named `chr13:75549820-75605809`
(bedtools getfasta / samtools faidx ids; serving.intervals.parse_region) is that piece of chr13: asked for
chr13:75550000-75550200, the genome reads it from that record; a chromosome's size is as far as its pieces reach.
Sequence comes out as text (case kept) or as codes (serving.dna.genome_codes: IUPAC ambiguity codes encode like N
and are counted in `ambiguous`; only non-nucleotide characters are refused).
"""
from __future__ import annotations

import bisect
import functools
import os
from pathlib import Path

import numpy as np

from serving.console import say
from serving.dna import ALPHABET, genome_codes
from serving.intervals import Interval, parse_region

READ_AHEAD = 1 << 16  # bp read past a short request, so nearby requests (sorted variants) need no new read
GZIP_MAGIC = b"\x1f\x8b"


class GenomeError(ValueError):
    """A genome FASTA that cannot be opened, indexed or read (names the file and what to run)."""


def _is_bgzf(head: bytes) -> bool:
    """BGZF (bgzip) is gzip with an extra field 'BC' in every block header."""
    return head[:2] == GZIP_MAGIC and len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC"


def bgzip_advice(path: Path) -> str:
    """The command that makes a bgzip copy of a plain-gzip FASTA under a NEW name (a shell redirection onto its
    own input would empty the file before it is read): x.fa.gz -> x.bgz.fa.gz."""
    name = path.name
    stem = name[: -len(".gz")] if name.lower().endswith(".gz") else name
    base, dot, ext = stem.rpartition(".")
    target = f"{base}.bgz.{ext}.gz" if dot and ext.lower() in ("fa", "fasta", "fna", "fas") else f"{stem}.bgz.gz"
    return f"gunzip -c {name} | bgzip > {target}"


def alias_candidates(name: str) -> list[str]:
    """Other spellings of a chromosome name, in the order tried: chr1 <-> 1, chrM <-> MT (<-> M)."""
    bare = name[3:] if name.lower().startswith("chr") else name
    out = [bare, "chr" + bare]
    if bare.upper() in ("M", "MT"):
        out += ["chrM", "MT", "chrMT", "M"]
    return [c for c in dict.fromkeys(out) if c != name]


class Genome:
    """An indexed FASTA in chromosome coordinates. records: {record id: length} (the FASTA's own sequences);
    sizes: {chrom: size as far as the file holds it} (a whole record's length, or the end of a chromosome's last
    piece), in the order chromosomes first appear; ambiguous: IUPAC codes met so far.

    path: .fa/.fasta (plain) or .fa.gz/.fa.bgz (bgzip, not plain gzip); `.fai` (and `.gzi`) are built beside it
    when missing, with a message. coords: how `chrom:start-end` ids are read (serving.intervals.parse_region:
    auto, bed, one-based, none); such a record is a piece of chrom unless the file also holds chrom itself.
    quiet: no messages (index built, alias used)."""

    def __init__(self, path: str | os.PathLike, quiet: bool = False, alphabet: str = ALPHABET, coords: str = "auto"):
        import pyfaidx

        self.path, self.quiet, self.alphabet, self.coords = Path(path), quiet, alphabet, coords
        if not self.path.is_file():
            raise GenomeError(f"{path}: no such genome FASTA")
        with open(self.path, "rb") as fh:
            head = fh.read(18)
        self.bgzf = _is_bgzf(head)
        gz_name = self.path.name.lower().endswith((".gz", ".bgz"))
        if head[:2] == GZIP_MAGIC and not self.bgzf:
            raise GenomeError(f"{path}: plain gzip cannot be read at random positions; make a bgzip copy under a "
                              f"new name ({bgzip_advice(self.path)}) and use that, or gunzip it")
        if self.bgzf and not gz_name:
            raise GenomeError(f"{path}: this file is bgzip-compressed; give it a .gz (or .bgz) name")
        missing = [f"{self.path}.fai"] + ([f"{self.path}.gzi"] if self.bgzf else [])
        missing = [m for m in missing if not Path(m).exists()]
        if missing:
            say(f"indexing {self.path} (once; writes {' and '.join(missing)})", quiet)
        try:
            self._fa = pyfaidx.Faidx(str(self.path), as_raw=True, strict_bounds=False, build_index=True)
        except ImportError as exc:  # pyfaidx reads bgzip through Biopython
            raise GenomeError(f"{path}: reading a bgzip genome needs Biopython (pip install biopython), "
                              f"or use the uncompressed FASTA ({exc})") from None
        except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, ValueError) as exc:
            raise GenomeError(f"{path}: cannot index this FASTA: {exc}") from None
        except OSError as exc:
            raise GenomeError(f"{path}: cannot read or index it ({exc}); the .fai must be writable beside the "
                              f"file (or made with `samtools faidx {self.path.name}`)") from None
        self.records: dict[str, int] = {name: int(rec.rlen) for name, rec in self._fa.index.items()}
        if not self.records:
            raise GenomeError(f"{path}: the FASTA holds no sequences")
        self._layout()
        self.ambiguous = 0
        self._aliases: dict[str, str | None] = {}
        self._block: tuple[str, int, str] | None = None  # (record, start, text) read ahead

    def _layout(self) -> None:
        """pieces: {chrom: [(start, end, record)] by start}; sizes; stretches (pieces merged where they touch)."""
        names = set(self.records)
        self.pieces: dict[str, list[tuple[int, int, str]]] = {}
        odd = []
        for rec, n in self.records.items():
            region = parse_region(rec, n, self.coords)
            chrom, offset = region.chrom, region.offset
            if chrom != rec and (chrom in names or any(a in names for a in alias_candidates(chrom))):
                chrom, offset = rec, 0  # the file holds the chromosome itself: this id is just a name
            odd += [region.note] if region.note else []
            self.pieces.setdefault(chrom, []).append((offset, offset + n, rec))
        if odd:
            say(f"note: {len(odd):,} record id(s) read as names, not places: {odd[0]}", self.quiet)
        self.sizes = {c: max(e for _, e, _ in ps) for c, ps in self.pieces.items()}
        self._starts, self._reach = {}, {}
        self.stretches: dict[str, list[tuple[int, int]]] = {}
        for chrom, ps in self.pieces.items():
            ps.sort()
            self._starts[chrom] = [s for s, _, _ in ps]
            reach, best = [], -1  # reach[i]: index of the piece reaching furthest among pieces[:i + 1]
            for i, (_, e, _) in enumerate(ps):
                best = i if best < 0 or e > ps[best][1] else best
                reach.append(best)
            self._reach[chrom] = reach
            merged: list[tuple[int, int]] = []
            for s, e, _ in ps:
                if merged and s <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], e))
                else:
                    merged.append((s, e))
            self.stretches[chrom] = merged

    def __repr__(self) -> str:
        return f"Genome({str(self.path)!r}, {len(self.records)} sequences, {self.total:,} bp)"

    @property
    def total(self) -> int:
        """bp the file holds (every record)."""
        return sum(self.records.values())

    def resolve(self, name: str) -> str | None:
        """The genome's name for a chromosome (itself, or an alias: chr1 <-> 1, chrM <-> MT), None when unknown.
        The first use of each alias is said once (stderr)."""
        if name in self.sizes:
            return name
        if name not in self._aliases:
            found = next((c for c in alias_candidates(name) if c in self.sizes), None)
            self._aliases[name] = found
            if found:
                say(f"note: chromosome {name!r} is {found!r} in {self.path.name}; using {found!r}", self.quiet)
        return self._aliases[name]

    def unknown(self, name: str) -> str:
        """The reason for a chromosome the genome does not hold (with what its names look like)."""
        names = list(self.sizes)
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        return f"chromosome {name!r} is not in {self.path.name} (its sequences: {shown})"

    def is_pieced(self, chrom: str) -> bool:
        """True when the file holds chrom as pieces (records named chrom:start-end), not as one whole record."""
        ps = self.pieces[chrom]
        return len(ps) > 1 or ps[0][2] != chrom

    def _parts(self, chrom: str, start: int, end: int) -> list[tuple[str, int, int]] | None:
        """The (record, start, end) parts, in record coordinates, that hold chrom[start:end] in order (one for a
        whole chromosome); None when some base of it is not in the file."""
        pieces, parts, at = self.pieces[chrom], [], start
        while at < end:
            i = bisect.bisect_right(self._starts[chrom], at) - 1
            if i < 0:
                return None
            s, e, rec = pieces[self._reach[chrom][i]]
            if e <= at:
                return None
            stop = min(e, end)
            parts.append((rec, at - s, stop - s))
            at = stop
        return parts

    def missing(self, chrom: str, start: int, end: int) -> str | None:
        """Why chrom[start:end] cannot be read (the genome's name; 0-based, half-open), None when it can."""
        size = self.sizes[chrom]
        held = " as far as the file holds it" if self.is_pieced(chrom) else ""
        if not 0 <= start <= end <= size:
            return f"{chrom}:{start}-{end} is outside {chrom} (0-{size:,}{held}) in {self.path.name}"
        if self._parts(chrom, start, end) is None:
            shown = ", ".join(f"{chrom}:{s}-{e}" for s, e in self.stretches[chrom][:3])
            more = ", ..." if len(self.stretches[chrom]) > 3 else ""
            return (f"{chrom}:{start}-{end} is not wholly in the pieces of {chrom} that {self.path.name} holds "
                    f"({shown}{more})")
        return None

    def spans(self, chroms: set[str] | None = None) -> list[Interval]:
        """What the file holds, in chromosome coordinates: each chromosome's stretches (a whole record is one
        stretch 0-size; touching or overlapping pieces merge), in the genome's order; chroms: only these."""
        return [Interval(c, s, e) for c, st in self.stretches.items() if chroms is None or c in chroms
                for s, e in st]

    def _read(self, rec: str, start: int, end: int) -> str:
        try:
            text = self._fa.from_file(rec, start + 1, end)
        except UnicodeDecodeError as exc:
            raise GenomeError(f"{self.path}: {rec}:{start}-{end} holds bytes that are not text ({exc.reason})"
                              ) from None
        if len(text) != end - start:
            raise GenomeError(f"{self.path}: read {len(text)} bp of {rec}:{start}-{end}; the file is shorter "
                              "than its index says (truncated, or the .fai is stale: delete it to rebuild)")
        return text

    def _record_text(self, rec: str, start: int, end: int) -> str:
        """rec[start:end] (record coordinates). Short requests read READ_AHEAD bp ahead, so the next request
        nearby (sorted input) comes from memory."""
        block = self._block
        if block and block[0] == rec and block[1] <= start and end <= block[1] + len(block[2]):
            return block[2][start - block[1] : end - block[1]]
        if end - start >= READ_AHEAD:
            return self._read(rec, start, end)
        text = self._read(rec, start, min(self.records[rec], start + READ_AHEAD))
        self._block = (rec, start, text)
        return text[: end - start]

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Text of chrom[start:end] (the genome's name, chromosome coordinates), case kept, from the record or
        pieces that hold it. GenomeError (Genome.missing's reason) when the file does not hold all of it."""
        parts = self._parts(chrom, start, end) if chrom in self.sizes and 0 <= start <= end else None
        if parts is None:
            raise GenomeError(self.missing(chrom, start, end) if chrom in self.sizes else self.unknown(chrom))
        if len(parts) == 1:
            return self._record_text(*parts[0])
        return "".join(self._record_text(*p) for p in parts)

    def codes(self, chrom: str, start: int, end: int) -> np.ndarray:
        """chrom[start:end] as (end - start,) uint8 codes (0-3 = ACGT, 4 = N or an ambiguity code, counted in
        self.ambiguous). Raises serving.dna.SequenceError naming the place of a non-nucleotide character."""
        codes, ambiguous = genome_codes(self.fetch(chrom, start, end), self.alphabet,
                                        f"{self.path.name} {chrom}", start)
        self.ambiguous += ambiguous
        return codes

    def close(self) -> None:
        self._fa.close()


@functools.lru_cache(maxsize=4)
def open_genome(path: str, quiet: bool = True, coords: str = "auto") -> Genome:
    """One Genome per path per process (a worker or an actor opens its genome once, whatever it is asked)."""
    return Genome(path, quiet=quiet, coords=coords)
