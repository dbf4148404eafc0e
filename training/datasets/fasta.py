"""Datasets from FASTA: positives (ChIP-seq peaks) and negatives from a file or dinucleotide-shuffled
positives (Altschul-Erikson), centre-cropped to one length."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from serving.dna import SequenceError, codes_to_onehot, to_codes
from serving.fasta import read_fasta
from serving.shuffle import shuffle_codes
from training.datasets.h5 import Dataset, DatasetError, split_indices


def dinucleotide_shuffle(seq: str, rng: np.random.Generator) -> str:
    """A random sequence with exactly the same dinucleotide counts as `seq` (Altschul-Erikson; the one
    implementation is serving.shuffle.shuffle_codes)."""
    if len(seq) <= 2:
        return seq
    letters = sorted(set(seq))
    codes = np.array([letters.index(c) for c in seq], np.uint8)
    return "".join(letters[c] for c in shuffle_codes(codes, rng))


def _fasta_sequences(path: str | os.PathLike, length: int | None) -> tuple[list[str], int]:
    seqs, skipped = [], 0
    for rec in read_fasta(path):
        seq = rec.sequence.upper()
        if length is None:
            length = len(seq)
        if len(seq) < length:
            skipped += 1
            continue
        if len(seq) > length:  # centre crop, as peak summits sit in the middle
            start = (len(seq) - length) // 2
            seq = seq[start:start + length]
        try:
            to_codes(seq)
        except SequenceError as exc:
            raise DatasetError(f"{path}: record {rec.id!r}: {exc}") from exc
        seqs.append(seq)
    if not seqs:
        raise DatasetError(f"{path}: no usable sequences (length {length})")
    return seqs, skipped


def fasta_dataset(positives: str | os.PathLike, negatives: str | os.PathLike | None = None,
                  length: int | None = None, seed: int = 0) -> Dataset:
    """Positives (and negatives, or dinucleotide-shuffled positives) from FASTA -> Dataset.

    Records longer than `length` (default: the first record's length) are centre-cropped; shorter
    ones are skipped and counted in the description."""
    rng = np.random.default_rng(seed)
    pos, skipped_pos = _fasta_sequences(positives, length)
    length = len(pos[0])
    if negatives is not None:
        neg, skipped_neg = _fasta_sequences(negatives, length)
        neg_desc = f"negatives from {Path(negatives).name}"
    else:
        neg, skipped_neg = [dinucleotide_shuffle(s, rng) for s in pos], 0
        neg_desc = "dinucleotide-shuffled positives as negatives"
    seqs = pos + neg
    y = np.r_[np.ones(len(pos), np.float32), np.zeros(len(neg), np.float32)]
    x = codes_to_onehot(np.stack([to_codes(s) for s in seqs]))
    parts = split_indices(len(seqs), rng)
    desc = (f"FASTA dataset: {len(pos)} positives from {Path(positives).name}, {len(neg)} {neg_desc}, "
            f"length {length}, seed {seed}; skipped shorter records: {skipped_pos} positive, {skipped_neg} negative")
    return Dataset({s: x[i] for s, i in parts.items()}, {s: y[i, None] for s, i in parts.items()}, {}, desc)


