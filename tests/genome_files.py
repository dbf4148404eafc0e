"""Small genomes for the genome-scale tests: FASTA written plain and bgzip (Biopython's BGZF writer) from known
sequences, so every test can cut the truth out of a Python string by hand."""
from __future__ import annotations

from pathlib import Path

from serving.fasta import write_fasta


def bgzip(src: Path, dst: Path) -> Path:
    """dst: src compressed as BGZF (what `bgzip` writes)."""
    from Bio import bgzf

    with open(src, "rb") as fh, bgzf.BgzfWriter(str(dst), "wb") as out:
        out.write(fh.read())
    return dst


def write_genome(folder: Path, seqs: dict[str, str], width: int = 60, name: str = "genome.fa") -> tuple[Path, Path]:
    """(plain FASTA, bgzip FASTA) of `seqs` ({chrom: sequence}, in order), lines of `width` bp; no index yet."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = folder / name
    write_fasta(list(seqs.items()), plain, width=width)
    return plain, bgzip(plain, folder / (name + ".gz"))


def plant(seq: str, at: int, motif: str) -> str:
    """seq with motif written over it from 0-based position `at`."""
    return seq[:at] + motif + seq[at + len(motif):]
