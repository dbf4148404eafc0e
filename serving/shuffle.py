"""Dinucleotide shuffles (Altschul-Erikson): random sequences with exactly the dinucleotide counts of a given
one, the one implementation for shuffled negatives (training) and the references of expected gradients."""
from __future__ import annotations

import hashlib

import numpy as np

from serving.dna import codes_to_onehot


def shuffle_codes(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """codes: (L,) small non-negative ints (0-3 ACGT, 4 N) -> (L,) a random sequence with the same first
    letter, last letter and dinucleotide counts: a random Eulerian walk whose last exits form a spanning
    arborescence rooted at the last letter (Altschul & Erikson 1985, Mol Biol Evol 2:526)."""
    codes = np.asarray(codes)
    if len(codes) <= 2:
        return codes.copy()
    letters = np.unique(codes).tolist()
    seq = codes.tolist()
    edges: dict[int, list[int]] = {c: [] for c in letters}
    for a, b in zip(seq, seq[1:]):
        edges[a].append(b)
    last = seq[-1]
    while True:  # a last exit edge for every letter but `last`, forming a tree rooted at `last`
        last_edge = {c: edges[c][rng.integers(len(edges[c]))] for c in letters if c != last and edges[c]}
        if _is_arborescence(last_edge, last):
            break
    walk: dict[int, list[int]] = {}
    for c in letters:
        rest = list(edges[c])
        if c in last_edge:
            rest.remove(last_edge[c])
        order = rng.permutation(len(rest))
        walk[c] = [rest[j] for j in order] + ([last_edge[c]] if c in last_edge else [])
    out = [seq[0]]
    used = dict.fromkeys(letters, 0)
    for _ in range(len(seq) - 1):
        c = out[-1]
        out.append(walk[c][used[c]])
        used[c] += 1
    return np.array(out, dtype=codes.dtype)


def _is_arborescence(parent: dict[int, int], root: int) -> bool:
    for start in parent:
        seen, node = set(), start
        while node != root:
            if node in seen or node not in parent:
                return False
            seen.add(node)
            node = parent[node]
    return True


def onehot_codes(x: np.ndarray) -> np.ndarray:
    """(..., L, 4) one-hot -> (..., L) uint8 codes, all-zero rows (N) -> 4."""
    x = np.asarray(x)
    return np.where(x.max(axis=-1) > 0, x.argmax(axis=-1), 4).astype(np.uint8)


def sequence_rng(codes: np.ndarray, seed: int = 0) -> np.random.Generator:
    """A generator seeded from one sequence's own letters and `seed`: codes (L,) -> the same draws for the same
    sequence in any row, batch, request, command or process (blake2b of the codes; numpy's SeedSequence)."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    digest = hashlib.blake2b(np.ascontiguousarray(codes, np.uint8).tobytes(), digest_size=16).digest()
    return np.random.default_rng([int(seed), *np.frombuffer(digest, "<u4").tolist()])


def shuffled_references(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k dinucleotide shuffles of each sequence: x (N, L, 4) one-hot -> (N, k, L, 4) float32. Each sequence's
    shuffles are drawn from sequence_rng(its codes, seed): they depend on the sequence and the seed only, never
    on its row or on the other sequences of the batch."""
    codes = onehot_codes(x)
    out = np.empty((len(codes), k, codes.shape[1]), np.uint8)
    for i, c in enumerate(codes):
        rng = sequence_rng(c, seed)
        for j in range(k):
            out[i, j] = shuffle_codes(c, rng)
    return codes_to_onehot(out)
