"""Where a FASTA record lies in a genome, read from its id: `chrom:start-end` in bedtools getfasta's 0-based
or samtools faidx's 1-based convention, so outputs can be written in genome coordinates (BED-style)."""
from __future__ import annotations

import re
from dataclasses import dataclass

COORD_RE = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>[\d,]+)-(?P<end>[\d,]+)$")
CONVENTIONS = ("auto", "bed", "one-based", "none")


@dataclass(frozen=True)
class Region:
    """Where a record lies: chrom name and the genome 0-based coordinate of its first base."""

    chrom: str
    offset: int = 0
    note: str = ""  # why a coordinate-looking id was not used as coordinates


def parse_region(rid: str, length: int, convention: str = "auto") -> Region:
    """Region of a FASTA record from its id.

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
