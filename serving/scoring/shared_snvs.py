"""VCF SNVs whose centred windows overlap, scored together by the incremental engine (serving.snv_scan): the
stretch they share is convolved once and each SNV costs its own window's few thousand operations, instead of two
whole windows (reference and alternative) per variant. Used by serving.scoring.vcf for every chunk of a VCF (all
its stretches in one call);
indels, lone SNVs and sparse ones are scored window by window as before, with the same results (within 1e-5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.dna import SequenceError, genome_codes

BASES = "ACGT"
MIN_SHARED = 2  # SNVs in a stretch, at least
MAX_SPACING = 25  # bases of stretch per SNV, at most: the engine's gain fell to ~1.1x at 50 and below 1 at 100
# (4,000 SNVs, engine / the predictor on their two windows each, 2-core EPYC)


@dataclass
class SharedStretch:
    """SNVs of one stretch of a chromosome: members (k,) indices into the chunk's variants; codes (n,) uint8 of the
    stretch; centres (k,) int64 offsets of their positions in it; alt (k,) int64 codes of their ALT bases."""

    members: np.ndarray
    codes: np.ndarray
    centres: np.ndarray
    alt: np.ndarray


def shared_stretches(genome, variants: list, placed: list[int], length: int, alphabet: str) -> list[SharedStretch]:
    """The stretches worth scoring together among the placed variants (indices into `variants`, windows inside
    their chromosome): SNVs (one A/C/G/T base each side), grouped where consecutive centred windows overlap, kept
    where a group has MIN_SHARED SNVs or more at most MAX_SPACING bases apart on average. A stretch holding a
    character that is not a nucleotide is left to window-by-window scoring (which names it)."""
    snvs = []
    for i in placed:
        v = variants[i]
        if len(v.ref) == 1 and len(v.alt) == 1 and v.ref.upper() in BASES and v.alt.upper() in BASES:
            snvs.append((genome.resolve(v.chrom), v.pos - 1, i))
    snvs.sort()
    groups: list[list[tuple[str, int, int]]] = []
    for snv in snvs:
        if groups and groups[-1][-1][0] == snv[0] and snv[1] - groups[-1][-1][1] < length:
            groups[-1].append(snv)
        else:
            groups.append([snv])
    out = []
    for group in groups:
        first, last = group[0][1], group[-1][1]
        if len(group) < MIN_SHARED or (last - first + 1) > MAX_SPACING * len(group):
            continue
        start = first - length // 2
        try:
            codes, _ = genome_codes(genome.fetch(group[0][0], start, last - length // 2 + length), alphabet)
        except SequenceError:
            continue
        members = np.array([i for _, _, i in group], np.int64)
        out.append(SharedStretch(members, codes, np.array([p for _, p, _ in group], np.int64) - start,
                                 np.array([BASES.index(variants[i].alt.upper()) for i in members], np.int64)))
    return out


def shared_logits(predictor, stretches: list[SharedStretch], rc: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(members (k,), reference logits (k,), alternative logits (k,)) of every stretch's SNVs, by the engine in one
    call: the stretches laid end to end (each window lies inside its own stretch, and the engine corrects whatever
    lies outside a window exactly), each distinct position once whatever its number of ALT alleles."""
    from serving.snv_scan import snv_logits

    offsets = np.cumsum([0] + [len(s.codes) for s in stretches[:-1]])
    codes = np.concatenate([s.codes for s in stretches])
    centres, which = np.unique(np.concatenate([s.centres + o for s, o in zip(stretches, offsets)]),
                               return_inverse=True)
    ref, every = snv_logits(predictor, codes, centres, rc)
    alt = np.concatenate([s.alt for s in stretches])
    return np.concatenate([s.members for s in stretches]), ref[which], every[which, alt]
