"""training.data: the notebook's HDF5 layout, its validation, the synthetic set and FASTA datasets."""
from collections import Counter

import h5py
import numpy as np
import pytest

from serving.dna import decode, encode
from serving.fasta import write_fasta
from training.datasets import DatasetError, load_h5, write_h5
from training.datasets.fasta import dinucleotide_shuffle, fasta_dataset
from training.datasets.jaspar import load_jaspar
from training.datasets.synthetic import synthetic_dataset


def _ctcf_layout(path, n=(30, 5, 10), length=200, seed=0, **override):
    """A file exactly as CTCF_200.h5 is laid out: x (N, 4, L) float, rows ACGT; y (N, 1)."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as fh:
        for split, k in zip(("train", "valid", "test"), n):
            x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (k, length))].transpose(0, 2, 1)
            y = rng.integers(0, 2, (k, 1)).astype(np.float32)
            fh.create_dataset(f"x_{split}", data=override.get(f"x_{split}", x))
            fh.create_dataset(f"y_{split}", data=override.get(f"y_{split}", y))
    return path


def test_loader_reads_ctcf_layout_and_transposes(tmp_path):
    path = _ctcf_layout(tmp_path / "c.h5")
    ds = load_h5(path)
    with h5py.File(path) as fh:
        raw = np.asarray(fh["x_train"])
        y = np.asarray(fh["y_test"])
    assert ds.x["train"].shape == (30, 200, 4) and ds.x["train"].dtype == np.float32
    np.testing.assert_array_equal(ds.x["train"], raw.transpose(0, 2, 1))
    np.testing.assert_array_equal(ds.y["test"], y)
    assert ds.sizes() == {"train": 30, "valid": 5, "test": 10} and ds.length == 200


def test_write_then_load_round_trip(tmp_path):
    x = {s: encode(["ACGTN" * 4] * k) for s, k in (("train", 3), ("valid", 2), ("test", 2))}
    y = {s: np.arange(len(v)) % 2 for s, v in x.items()}
    ds = load_h5(write_h5(tmp_path / "r.h5", x, y))
    for s in x:
        np.testing.assert_array_equal(ds.x[s], x[s])
        np.testing.assert_array_equal(ds.y[s][:, 0], y[s])


@pytest.mark.parametrize("override, message", [
    ({"x_valid": None}, "missing key 'x_valid'"),
    ({"x_train": np.zeros((30, 200, 4), np.float32)}, "x_train must have shape (N, 4, L)"),
    ({"y_train": np.full((30, 1), 2.0, np.float32)}, "y_train must hold binary labels 0/1, found [2.0]"),
    ({"y_test": np.full((10, 1), np.nan, np.float32)}, "y_test contains NaN"),
    ({"y_valid": np.zeros((4, 1), np.float32)}, "y_valid has 4 labels but x has 5"),
    ({"x_test": np.full((10, 4, 200), np.nan, np.float32)}, "x_test contains NaN"),
    ({"x_test": np.full((10, 4, 200), 0.3, np.float32)}, "x_test is not one-hot"),
])
def test_bad_files_name_key_and_problem(tmp_path, override, message):
    path = tmp_path / "bad.h5"
    if override.get("x_valid", 1) is None:
        _ctcf_layout(path)
        with h5py.File(path, "a") as fh:
            del fh["x_valid"]
    else:
        _ctcf_layout(path, **override)
    with pytest.raises(DatasetError) as err:
        load_h5(path)
    assert message in str(err.value)


def test_not_hdf5_and_missing_file(tmp_path):
    (tmp_path / "t.h5").write_text("hello")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        load_h5(tmp_path / "t.h5")
    with pytest.raises(DatasetError, match="no such file"):
        load_h5(tmp_path / "nope.h5")


def test_jaspar_is_ctcf_ma0139():
    name, counts = load_jaspar()
    assert name.startswith("MA0139.1") and counts.shape == (19, 4)
    assert "".join("ACGT"[i] for i in counts.argmax(1)) == "TGGCCACCAGGGGGCGCTA"  # CTCF consensus
    assert counts.sum(1).min() > 900  # ~913 sites per column


def test_synthetic_is_deterministic_balanced_and_records_motifs():
    a, b = synthetic_dataset(600, seed=3), synthetic_dataset(600, seed=3)
    c = synthetic_dataset(600, seed=4)
    np.testing.assert_array_equal(a.x["train"], b.x["train"])
    assert not np.array_equal(a.x["train"], c.x["train"])
    assert a.sizes() == {"train": 420, "valid": 60, "test": 120}
    y = np.concatenate([a.y[s] for s in a.y])
    assert abs(y.mean() - 0.5) < 0.01
    motif = np.concatenate([a.motif[s] for s in a.motif])
    carriers = motif[:, 0] >= 0
    assert carriers.sum() > 0.8 * (y == 1).sum()  # ~92% of positives carry an instance
    assert not carriers[y[:, 0] == 0].any()  # no recorded instance in negatives
    _, counts = load_jaspar()
    pwm = counts / counts.sum(1, keepdims=True)
    x = np.concatenate([a.x[s] for s in a.x])
    # the recorded instances score far higher under the CTCF matrix than random windows
    def score(window, strand):
        w = window if strand > 0 else window[::-1, ::-1]
        return float(np.log(pwm + 1e-3)[w.astype(bool)].sum())
    inst = [score(x[i, s:e], st) for i, (s, e, st) in enumerate(motif) if s >= 0]
    rand = [score(x[i, 5:24], 1) for i in range(200)]
    assert np.mean(inst) > np.mean(rand) + 8
    gc = x[:, :, 1:3].sum(axis=(1, 2)) / 200
    assert gc.std() > 0.05  # per-sequence GC content varies


def test_dinucleotide_shuffle_keeps_dinucleotides():
    rng = np.random.default_rng(0)
    seq = decode(encode(["ACGTTGCAAACGCGTATATNNGCA" * 3]))[0]
    shuffled = {dinucleotide_shuffle(seq, rng) for _ in range(20)}
    count = lambda s: Counter(s[i:i + 2] for i in range(len(s) - 1))
    for s in shuffled:
        assert count(s) == count(seq) and s[0] == seq[0] and s[-1] == seq[-1]
    assert len(shuffled) > 10


def test_fasta_dataset_with_and_without_negatives(tmp_path):
    rng = np.random.default_rng(1)
    pos = ["".join(rng.choice(list("ACGT"), 60)) for _ in range(40)]
    write_fasta([(f"p{i}", s) for i, s in enumerate(pos)] + [("short", "ACGT")], tmp_path / "p.fa")
    write_fasta([(f"n{i}", s[::-1] + "AAAA") for i, s in enumerate(pos)], tmp_path / "n.fa")
    ds = fasta_dataset(tmp_path / "p.fa", tmp_path / "n.fa", seed=0)
    assert ds.length == 60 and sum(ds.sizes().values()) == 80
    assert "skipped shorter records: 1 positive" in ds.description
    shuffled = fasta_dataset(tmp_path / "p.fa", seed=0)
    assert sum(shuffled.sizes().values()) == 80 and "dinucleotide-shuffled" in shuffled.description
    write_fasta([("bad", "ACGTXACGT")], tmp_path / "bad.fa")
    with pytest.raises(DatasetError, match="record 'bad'.*'X' at position 5"):
        fasta_dataset(tmp_path / "bad.fa")
