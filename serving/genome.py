"""An indexed reference genome (FASTA plain or bgzip, read with pyfaidx): chromosome sizes, names resolved through
aliases (chr1 <-> 1, chrM <-> MT) and random access per interval, so the whole genome is never in memory.

Coordinates are 0-based, half-open. Sequence comes out as text (case kept) or as codes (serving.dna.genome_codes:
IUPAC ambiguity codes encode like N and are counted in `ambiguous`; only non-nucleotide characters are refused).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from serving.console import say
from serving.dna import ALPHABET, genome_codes

READ_AHEAD = 1 << 16  # bp read past a short request, so nearby requests (sorted variants) need no new read
GZIP_MAGIC = b"\x1f\x8b"


class GenomeError(ValueError):
    """A genome FASTA that cannot be opened, indexed or read (names the file and what to run)."""


def _is_bgzf(head: bytes) -> bool:
    """BGZF (bgzip) is gzip with an extra field 'BC' in every block header."""
    return head[:2] == GZIP_MAGIC and len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC"


def alias_candidates(name: str) -> list[str]:
    """Other spellings of a chromosome name, in the order tried: chr1 <-> 1, chrM <-> MT (<-> M)."""
    bare = name[3:] if name.lower().startswith("chr") else name
    out = [bare, "chr" + bare]
    if bare.upper() in ("M", "MT"):
        out += ["chrM", "MT", "chrMT", "M"]
    return [c for c in dict.fromkeys(out) if c != name]


class Genome:
    """An indexed FASTA. sizes: {chrom: length} in the index's order; ambiguous: IUPAC codes met so far.

    path: .fa/.fasta (plain) or .fa.gz/.fa.bgz (bgzip, not plain gzip); `.fai` (and `.gzi`) are built beside it
    when missing, with a message. quiet: no messages (index built, alias used)."""

    def __init__(self, path: str | os.PathLike, quiet: bool = False, alphabet: str = ALPHABET):
        import pyfaidx

        self.path, self.quiet, self.alphabet = Path(path), quiet, alphabet
        if not self.path.is_file():
            raise GenomeError(f"{path}: no such genome FASTA")
        with open(self.path, "rb") as fh:
            head = fh.read(18)
        self.bgzf = _is_bgzf(head)
        gz_name = self.path.name.lower().endswith((".gz", ".bgz"))
        if head[:2] == GZIP_MAGIC and not self.bgzf:
            raise GenomeError(f"{path}: plain gzip cannot be read at random positions; recompress it with bgzip "
                              f"(gunzip -c {self.path.name} | bgzip > {self.path.stem}.gz), or gunzip it")
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
        self.sizes: dict[str, int] = {name: int(rec.rlen) for name, rec in self._fa.index.items()}
        if not self.sizes:
            raise GenomeError(f"{path}: the FASTA holds no sequences")
        self.ambiguous = 0
        self._aliases: dict[str, str | None] = {}
        self._block: tuple[str, int, str] | None = None  # (chrom, start, text) read ahead

    def __repr__(self) -> str:
        return f"Genome({str(self.path)!r}, {len(self.sizes)} sequences, {sum(self.sizes.values()):,} bp)"

    @property
    def total(self) -> int:
        return sum(self.sizes.values())

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

    def _read(self, chrom: str, start: int, end: int) -> str:
        try:
            text = self._fa.from_file(chrom, start + 1, end)
        except UnicodeDecodeError as exc:
            raise GenomeError(f"{self.path}: {chrom}:{start}-{end} holds bytes that are not text ({exc.reason})"
                              ) from None
        if len(text) != end - start:
            raise GenomeError(f"{self.path}: read {len(text)} bp of {chrom}:{start}-{end}; the file is shorter "
                              "than its index says (truncated, or the .fai is stale: delete it to rebuild)")
        return text

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Text of chrom[start:end] (the genome's name; 0 <= start <= end <= size), case kept. Short requests
        read READ_AHEAD bp ahead, so the next request nearby (sorted input) comes from memory."""
        size = self.sizes[chrom]
        if not 0 <= start <= end <= size:
            raise GenomeError(f"{chrom}:{start}-{end} is outside {chrom} (0-{size}) in {self.path.name}")
        block = self._block
        if block and block[0] == chrom and block[1] <= start and end <= block[1] + len(block[2]):
            return block[2][start - block[1] : end - block[1]]
        if end - start >= READ_AHEAD:
            return self._read(chrom, start, end)
        text = self._read(chrom, start, min(size, start + READ_AHEAD))
        self._block = (chrom, start, text)
        return text[: end - start]

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
def open_genome(path: str, quiet: bool = True) -> Genome:
    """One Genome per path per process (a worker or an actor opens its genome once, whatever it is asked)."""
    return Genome(path, quiet=quiet)
