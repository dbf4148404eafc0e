"""Where a FASTA record lies in a genome, read from its id (`chrom:start-end`, bedtools getfasta's 0-based or
samtools faidx's 1-based convention). Defined once in serving.intervals (the core: the indexed genome reads such
records as pieces of their chromosome too); named here for the scoring modules that place their outputs with it."""
from serving.intervals import CONVENTIONS, COORD_RE, Region, parse_region

__all__ = ["CONVENTIONS", "COORD_RE", "Region", "parse_region"]
