"""Datasets in the notebook's HDF5 layout: load/validate, the built-in synthetic CTCF set, FASTA
datasets (with dinucleotide-shuffled negatives) and the download of the real CTCF_200.h5.

Layout: keys x_train, y_train, x_valid, y_valid, x_test, y_test; x stored (N, 4, L) one-hot
(rows A, C, G, T), y (N, 1). The synthetic set adds motif_train/valid/test: (N, 3) int32
(start, end, strand) of the embedded CTCF instance, (-1, -1, 0) where there is none.
"""
from __future__ import annotations

import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
import h5py
import numpy as np

from serving.encoding import ALPHABET, SequenceError, codes_to_onehot, to_codes
from serving.fasta import read_fasta

SPLITS = ("train", "valid", "test")
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # the notebook's CTCF_200.h5 proportions
ZENODO_RECORD = "7265991"
ZENODO_TFS = ("CTCF", "ATF2", "BACH1", "ELK1", "GABPA", "MAX", "REST", "SRF", "ZNF24")
DEFAULT_SYNTHETIC_N = 73_080  # 51,156 training sequences, as CTCF_200.h5


class DatasetError(ValueError):
    """A dataset file that does not have the expected layout."""


@dataclass
class Dataset:
    """x_*: (N, L, 4) float32; y_*: (N, 1) float32; motif_*: (N, 3) int32 or None."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    motif: dict[str, np.ndarray] = field(default_factory=dict)
    description: str = ""

    @property
    def length(self) -> int:
        return int(self.x["train"].shape[1])

    def sizes(self) -> dict[str, int]:
        return {s: int(len(self.x[s])) for s in SPLITS}


# ---------------------------------------------------------------------------------------- HDF5 I/O

def load_h5(path: str | os.PathLike) -> Dataset:
    """Read and validate a dataset file; x is transposed to (N, L, 4) float32, y to (N, 1)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: not an HDF5 file ({exc})") from exc
    with fh:
        x, y, motif = {}, {}, {}
        for split in SPLITS:
            for key in (f"x_{split}", f"y_{split}"):
                if key not in fh:
                    raise DatasetError(f"{path}: missing key {key!r} (have: {', '.join(sorted(fh.keys()))})")
            x[split] = _check_x(path, f"x_{split}", np.asarray(fh[f"x_{split}"]))
            y[split] = _check_y(path, f"y_{split}", np.asarray(fh[f"y_{split}"]), len(x[split]))
            if f"motif_{split}" in fh:
                motif[split] = np.asarray(fh[f"motif_{split}"], dtype=np.int32)
        description = str(fh.attrs.get("description", f"HDF5 dataset {path.name}"))
    lengths = {s: x[s].shape[1] for s in SPLITS}
    if len(set(lengths.values())) != 1:
        raise DatasetError(f"{path}: splits have different sequence lengths {lengths}")
    return Dataset(x, y, motif, description)


def _check_x(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    if x.ndim != 3 or x.shape[1] != 4:
        raise DatasetError(f"{path}: {key} must have shape (N, 4, L) one-hot with rows A,C,G,T, got {x.shape}")
    if x.shape[0] == 0:
        raise DatasetError(f"{path}: {key} is empty")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise DatasetError(f"{path}: {key} contains NaN or infinite values")
    if not np.isin(x, (0.0, 1.0)).all():
        raise DatasetError(f"{path}: {key} is not one-hot (values other than 0 and 1)")
    if (x.sum(axis=1) > 1).any():
        raise DatasetError(f"{path}: {key} is not one-hot (a position with more than one base)")
    return np.ascontiguousarray(x.transpose(0, 2, 1))


def _check_y(path: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"{path}: {key} must have shape (N, 1) or (N,), got {y.shape}")
    if len(y) != n:
        raise DatasetError(f"{path}: {key} has {len(y)} labels but x has {n} sequences")
    y = y.astype(np.float32)
    if not np.isfinite(y).all():
        raise DatasetError(f"{path}: {key} contains NaN or infinite values")
    if not np.isin(y, (0.0, 1.0)).all():
        bad = np.unique(y[~np.isin(y, (0.0, 1.0))])[:5]
        raise DatasetError(f"{path}: {key} must hold binary labels 0/1, found {bad.tolist()}")
    return y[:, None]


def write_h5(path: str | os.PathLike, x: dict[str, np.ndarray], y: dict[str, np.ndarray],
             motif: dict[str, np.ndarray] | None = None, description: str = "") -> Path:
    """Write x (N, L, 4) / y (N,) per split in the notebook's layout, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as fh:
            for split in SPLITS:
                fh.create_dataset(f"x_{split}", data=np.asarray(x[split], np.float32).transpose(0, 2, 1),
                                  compression="gzip", compression_opts=4, chunks=True)
                fh.create_dataset(f"y_{split}", data=np.asarray(y[split], np.float32).reshape(-1, 1))
                if motif and split in motif:
                    fh.create_dataset(f"motif_{split}", data=np.asarray(motif[split], np.int32))
            fh.attrs["description"] = description
            fh.attrs["alphabet"] = ALPHABET
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def split_indices(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Shuffle range(n) and cut it 0.7/0.1/0.2 into train/valid/test."""
    order = rng.permutation(n)
    n_train = int(round(n * SPLIT_FRACTIONS[0]))
    n_valid = int(round(n * SPLIT_FRACTIONS[1]))
    return {"train": order[:n_train], "valid": order[n_train:n_train + n_valid], "test": order[n_train + n_valid:]}


# ---------------------------------------------------------------------------------------- motif

def load_jaspar(path: str | os.PathLike | None = None) -> tuple[str, np.ndarray]:
    """A JASPAR count matrix -> (name, counts (W, 4) in ACGT order). Default: CTCF MA0139.1 (shipped)."""
    if path is None:
        text = resources.files("training").joinpath("motifs/MA0139.1.jaspar").read_text()
    else:
        text = Path(path).read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    name = lines[0].lstrip(">").strip()
    rows = {}
    for ln in lines[1:]:
        base, _, rest = ln.partition("[")
        rows[base.strip().upper()] = [float(v) for v in rest.rstrip("]").split()]
    counts = np.array([rows[b] for b in ALPHABET]).T
    return name, counts


def motif_probabilities(counts: np.ndarray, pseudocount: float = 0.5) -> np.ndarray:
    """(W, 4) counts -> (W, 4) per-position base probabilities."""
    c = counts + pseudocount
    return c / c.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------- synthetic

def _sample_from(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """probs: (K, W, 4) -> codes (K, W) uint8, one categorical draw per position."""
    cum = probs.cumsum(axis=-1)
    u = rng.random(probs.shape[:-1] + (1,))
    return np.minimum((u > cum).sum(axis=-1), 3).astype(np.uint8)


def synthetic_dataset(n: int = DEFAULT_SYNTHETIC_N, length: int = 200, seed: int = 0) -> Dataset:
    """The built-in CTCF-like dataset: deterministic for a given (n, length, seed).

    Half the sequences are positives. Every sequence has its own GC content (0.3-0.65), and may
    carry a low-complexity repeat and a 'decoy' (the CTCF matrix with its columns shuffled, same
    composition). Positives carry one instance sampled from JASPAR MA0139.1 on a random strand,
    centred with +-40 nt jitter; 8% of positives have none (peaks without the motif) and 15% of
    negatives carry a weak instance sampled from a flattened matrix, so the task is not trivially
    separable. motif_* records each true instance's (start, end, strand).
    """
    if n < 10:
        raise ValueError("n must be at least 10")
    rng = np.random.default_rng(seed)
    _, counts = load_jaspar()
    pwm = motif_probabilities(counts)
    width = len(pwm)
    if length < width + 2:
        raise ValueError(f"length must be at least {width + 2}")

    y = np.zeros(n, np.float32)
    y[: n // 2] = 1
    rng.shuffle(y)

    gc = rng.uniform(0.3, 0.65, size=n)
    base_p = np.stack([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2], axis=1)  # (n, 4)
    codes = _sample_from(np.broadcast_to(base_p[:, None, :], (n, length, 4)), rng)

    # low-complexity repeats ((CA)n, poly-A/T, CpG runs) in 30% of sequences
    repeats = [np.array(to_codes(r)) for r in ("CA" * 12, "A" * 18, "T" * 18, "CG" * 8, "GGC" * 6)]
    for i in np.flatnonzero(rng.random(n) < 0.3):
        r = repeats[rng.integers(len(repeats))]
        start = rng.integers(0, length - len(r) + 1)
        codes[i, start:start + len(r)] = r

    def place(i: int, motif_codes: np.ndarray, start: int, strand: int) -> None:
        codes[i, start:start + width] = motif_codes if strand > 0 else (3 - motif_codes)[::-1]

    # decoys: the CTCF matrix with shuffled columns, anywhere, in 40% of sequences of both classes
    for i in np.flatnonzero(rng.random(n) < 0.4):
        decoy_pwm = pwm[rng.permutation(width)]
        place(i, _sample_from(decoy_pwm[None], rng)[0], rng.integers(0, length - width + 1), 1)

    motif = np.tile(np.array([-1, -1, 0], np.int32), (n, 1))
    centre = (length - width) // 2
    jitter = min(40, centre)
    carriers = np.flatnonzero((y == 1) & (rng.random(n) >= 0.08))
    weak = np.flatnonzero((y == 0) & (rng.random(n) < 0.15))
    flat = pwm ** 0.35
    flat /= flat.sum(axis=1, keepdims=True)
    for idx, matrix in ((carriers, pwm), (weak, flat)):
        draws = _sample_from(np.broadcast_to(matrix, (len(idx), width, 4)), rng)
        starts = centre + rng.integers(-jitter, jitter + 1, size=len(idx))
        strands = rng.choice([-1, 1], size=len(idx))
        for i, m, s, st in zip(idx, draws, starts, strands):
            place(i, m, s, st)
            if matrix is pwm:
                motif[i] = (s, s + width, st)

    parts = split_indices(n, rng)
    x = codes_to_onehot(codes)
    desc = (f"built-in synthetic CTCF set (JASPAR MA0139.1 instances), n={n}, length={length}, seed={seed}")
    return Dataset({s: x[i] for s, i in parts.items()}, {s: y[i, None] for s, i in parts.items()},
                   {s: motif[i] for s, i in parts.items()}, desc)


def write_synthetic(out: str | os.PathLike, n: int = DEFAULT_SYNTHETIC_N, length: int = 200, seed: int = 0) -> Path:
    ds = synthetic_dataset(n, length, seed)
    return write_h5(out, ds.x, {s: ds.y[s][:, 0] for s in SPLITS}, ds.motif, ds.description)


# ---------------------------------------------------------------------------------------- FASTA

def dinucleotide_shuffle(seq: str, rng: np.random.Generator) -> str:
    """A random sequence with exactly the same dinucleotide counts as `seq` (Altschul-Erikson,
    via a random Eulerian path whose last edges form a spanning arborescence)."""
    if len(seq) <= 2:
        return seq
    chars = sorted(set(seq))
    edges: dict[str, list[str]] = {c: [] for c in chars}
    for a, b in zip(seq, seq[1:]):
        edges[a].append(b)
    last = seq[-1]
    while True:  # choose a last exit edge for every vertex but `last`, forming a tree rooted at `last`
        last_edge = {}
        for c in chars:
            if c != last and edges[c]:
                last_edge[c] = edges[c][rng.integers(len(edges[c]))]
        if _is_arborescence(last_edge, last):
            break
    walk_edges = {}
    for c in chars:
        rest = list(edges[c])
        if c in last_edge:
            rest.remove(last_edge[c])
        rng.shuffle(rest)
        walk_edges[c] = rest + ([last_edge[c]] if c in last_edge else [])
    out = [seq[0]]
    pos = {c: 0 for c in chars}
    for _ in range(len(seq) - 1):
        c = out[-1]
        out.append(walk_edges[c][pos[c]])
        pos[c] += 1
    return "".join(out)


def _is_arborescence(parent: dict[str, str], root: str) -> bool:
    for start in parent:
        seen, node = set(), start
        while node != root:
            if node in seen or node not in parent:
                return False
            seen.add(node)
            node = parent[node]
    return True


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


# ---------------------------------------------------------------------------------------- download

def zenodo_url(tf: str) -> str:
    return f"https://zenodo.org/records/{ZENODO_RECORD}/files/{tf}_200.h5?download=1"


def download(tf: str, out: str | os.PathLike, url: str | None = None, progress: bool = True) -> Path:
    """Download `<tf>_200.h5` from Zenodo record 7265991 (needs internet), then validate it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    url = url or zenodo_url(tf)
    part = out.with_name(out.name + ".part")
    with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as fh:
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        while block := resp.read(1 << 20):
            fh.write(block)
            done += len(block)
            if progress:
                pct = f" {100 * done / total:5.1f}%" if total else ""
                print(f"\rdownloading {url}: {done / 1e6:8.1f} MB{pct}", end="", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    try:
        load_h5(part)
    except DatasetError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, out)
    return out


def describe(ds: Dataset) -> dict:
    """A JSON-able summary of a dataset for metadata.json."""
    return {
        "description": ds.description,
        "sequence_length": ds.length,
        "sizes": ds.sizes(),
        "positive_fraction": {s: round(float(ds.y[s].mean()), 4) for s in SPLITS},
    }

