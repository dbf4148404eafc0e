"""training.datasets.background and the built-in set: human-like dinucleotide statistics (CpG depleted outside
islands, not inside), GC varying between and within sequences, repeats, and instances placed around the centre."""
import numpy as np
import pytest

from training.datasets import background as bg


def _obs_exp(codes: np.ndarray, mask: np.ndarray, a: int, b: int) -> float:
    pair = (codes[:, :-1] == a) & (codes[:, 1:] == b)
    both = mask[:, :-1] & mask[:, 1:]
    return float(pair[both].mean() / ((codes[mask] == a).mean() * (codes[mask] == b).mean()))


def test_human_table_has_the_published_ratios():
    f = bg.HUMAN_DINUCLEOTIDES / bg.HUMAN_DINUCLEOTIDES.sum()
    assert 0.2 <= bg.cg_obs_exp(f) <= 0.25  # CpG at about a fifth of its expectation
    np.testing.assert_allclose(f.sum(axis=1), f.sum(axis=0), atol=2e-3)  # strand-symmetric
    assert abs(f.sum(axis=1) @ [0, 1, 1, 0] - 0.41) < 0.01
    for gc in (0.35, 0.5, 0.65):  # tilting to another GC keeps CpG depleted
        t = bg.tilted(bg.HUMAN_DINUCLEOTIDES, gc)
        assert abs(t.sum(axis=1) @ [0, 1, 1, 0] - gc) < 0.01 and bg.cg_obs_exp(t) < 0.3


def test_sampled_background_is_cpg_depleted_outside_islands_only():
    rng = np.random.default_rng(1)
    n, length = 3000, 200
    gc = bg.gc_tracks(n, length, rng)
    island, island_gc = bg.cpg_islands(n, length, 0.2, rng)
    codes = bg.markov_codes(np.where(island, island_gc, gc), rng, island)
    outside, inside = _obs_exp(codes, ~island, 1, 2), _obs_exp(codes, island, 1, 2)
    assert 0.18 < outside < 0.32, outside
    assert inside > 0.6, inside  # Gardiner-Garden & Frommer's island criterion
    assert _obs_exp(codes, ~island, 3, 0) < 0.85  # TpA depleted too
    plain = codes[~island.any(axis=1)]
    per_seq = np.isin(plain, (1, 2)).mean(axis=1)
    assert abs(per_seq.mean() - 0.41) < 0.02 and 0.05 < per_seq.std() < 0.12
    halves = np.isin(plain[:, :100], (1, 2)).mean(1) - np.isin(plain[:, 100:], (1, 2)).mean(1)
    assert halves.std() > 0.06  # GC also changes within a sequence (stretches)


def test_repeats_are_written_in_place():
    codes = np.zeros((400, 200), np.uint8) + 2  # all G: any other letter came from a repeat
    bg.add_repeats(codes, np.random.default_rng(0), simple=0.5, low_complexity=0.0)
    touched = (codes != 2).any(axis=1).mean()
    assert 0.4 < touched < 0.6


def test_builtin_set_places_instances_around_the_centre_on_both_strands():
    from training.baseline import best_match_position
    from training.datasets.synthetic import synthetic_dataset

    ds = synthetic_dataset(2000, seed=3)
    motif = np.concatenate([ds.motif[s] for s in ds.motif])
    y = np.concatenate([ds.y[s][:, 0] for s in ds.y])
    x = np.concatenate([ds.x[s] for s in ds.x])
    carriers = motif[:, 0] >= 0
    assert not carriers[y == 0].any() and 0.85 < carriers[y == 1].mean() < 0.97
    offset = motif[carriers, 0] - (200 - 19) // 2
    assert 5 < np.median(np.abs(offset)) < 16 and np.abs(offset).max() > 30  # Laplace: peaked, with tails
    assert 0.4 < (motif[carriers, 2] > 0).mean() < 0.6
    found = best_match_position(x[carriers])  # the matrix finds the planted instance in most positives
    assert ((found[:, 0] == motif[carriers, 0]) & (found[:, 2] == motif[carriers, 2])).mean() > 0.75
    again = synthetic_dataset(2000, seed=3)
    np.testing.assert_array_equal(again.x["test"], ds.x["test"])
    assert "genome background" in ds.description


def test_iid_background_stays_available_and_bad_options_are_refused():
    from training.datasets.synthetic import synthetic_dataset

    ds = synthetic_dataset(300, seed=0, background="iid")
    assert "iid background" in ds.description and sum(ds.sizes().values()) == 300
    with pytest.raises(ValueError, match="background must be one of genome, iid"):
        synthetic_dataset(300, background="mouse")


def test_default_dataset_rewrites_a_file_from_an_older_generator(tmp_path, capsys):
    import h5py

    from training.datasets.synthetic import synthetic_description
    from training.pipeline import default_dataset

    path = tmp_path / "ctcf_synthetic.h5"
    with h5py.File(path, "w") as fh:
        fh.attrs["description"] = "built-in synthetic CTCF set (JASPAR MA0139.1 instances), n=300, length=200, seed=0"
    default_dataset(path, n=300)
    assert "holds another version" in capsys.readouterr().err
    with h5py.File(path, "r") as fh:
        assert fh.attrs["description"] == synthetic_description(300, 200, 0)
    stamp = path.stat().st_mtime_ns
    default_dataset(path, n=300)  # current: reused as it is
    assert path.stat().st_mtime_ns == stamp and "writing" not in capsys.readouterr().err
