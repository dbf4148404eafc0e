"""Datasets in the notebook's HDF5 layout: the Dataset type, reading with layout checks, atomic writing.

Layout: keys x_train, y_train, x_valid, y_valid, x_test, y_test; x stored (N, 4, L) one-hot (rows A, C, G, T),
y (N, 1). The synthetic set adds motif_train/valid/test: (N, 3) int32 (start, end, strand) of the embedded
CTCF instance, (-1, -1, 0) where there is none. A set planted with another JASPAR matrix records it in the
attribute "matrix" (JASPAR-format text), which the PWM baseline and the model's metadata use.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from serving.dna import ALPHABET

SPLITS = ("train", "valid", "test")
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # the notebook's CTCF_200.h5 proportions


class DatasetError(ValueError):
    """A dataset file that does not have the expected layout."""


@dataclass
class Dataset:
    """x_*: (N, L, 4) float32; y_*: (N, 1) float32; motif_*: (N, 3) int32 or None; matrix: the planted JASPAR
    matrix as JASPAR-format text, "" when the file records none (the default CTCF set, real data)."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    motif: dict[str, np.ndarray] = field(default_factory=dict)
    description: str = ""
    matrix: str = ""

    @property
    def length(self) -> int:
        return int(self.x["train"].shape[1])

    def sizes(self) -> dict[str, int]:
        return {s: int(len(self.x[s])) for s in SPLITS}


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
        matrix = str(fh.attrs.get("matrix", ""))
    lengths = {s: x[s].shape[1] for s in SPLITS}
    if len(set(lengths.values())) != 1:
        raise DatasetError(f"{path}: splits have different sequence lengths {lengths}")
    return Dataset(x, y, motif, description, matrix)


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
             motif: dict[str, np.ndarray] | None = None, description: str = "", matrix: str = "") -> Path:
    """Write x (N, L, 4) / y (N,) per split in the notebook's layout, atomically; matrix: JASPAR text of the
    planted matrix, stored only when given."""
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
            if matrix:
                fh.attrs["matrix"] = matrix
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


def describe(ds: Dataset) -> dict:
    """A JSON-able summary of a dataset for metadata.json."""
    return {
        "description": ds.description,
        "sequence_length": ds.length,
        "sizes": ds.sizes(),
        "positive_fraction": {s: round(float(ds.y[s].mean()), 4) for s in SPLITS},
    }

