"""training.baseline: the best MA0139.1 log-odds match per sequence on either strand, its AUROC beside the CNN's in
the export metadata and in `evaluate`, and the failed-check warning of a model that does not beat it."""
import json

import numpy as np

from serving.dna import encode, random_dna, reverse_complement
from training.baseline import best_match, best_match_position, log_odds, match_scores, pwm_baseline
from training.datasets.jaspar import load_jaspar


def _brute_force(seq_onehot: np.ndarray, matrix: np.ndarray) -> float:
    w = len(matrix)
    fwd = [float((seq_onehot[i:i + w] * matrix).sum()) for i in range(len(seq_onehot) - w + 1)]
    rc = reverse_complement(seq_onehot)
    rev = [float((rc[i:i + w] * matrix).sum()) for i in range(len(rc) - w + 1)]
    return max(fwd + rev)


def test_best_match_is_the_best_window_on_either_strand():
    matrix = log_odds(load_jaspar()[1])
    x = encode(random_dna(6, 60, seed=2))
    np.testing.assert_allclose(best_match(x, matrix), [_brute_force(s, matrix) for s in x], rtol=1e-5)
    scores = match_scores(x, matrix)
    assert scores.shape == (6, 2, 42)


def test_planted_instance_is_found_on_its_strand():
    _, counts = load_jaspar()
    consensus = "".join("ACGT"[i] for i in counts.argmax(axis=1))
    rc = consensus[::-1].translate(str.maketrans("ACGT", "TGCA"))
    background = random_dna(2, 100, seed=4)
    seqs = [background[0][:30] + consensus + background[0][49:], background[1][:70] + rc + background[1][89:]]
    pos = best_match_position(encode(seqs))
    assert pos.tolist() == [[30, 49, 1], [70, 89, -1]]


def test_baseline_separates_the_builtin_set_and_metadata_records_it(trained):
    from training.datasets import load_h5

    ds = load_h5(trained["data"])
    base = pwm_baseline(ds.x["test"], ds.y["test"])
    assert 0.8 < base["auroc"] < 1 and base["matrix"].startswith("MA0139.1")
    meta = trained["meta"]
    assert meta["baseline"]["pwm"]["auroc"] == base["auroc"]  # the same test split as the CNN's metrics
    assert meta["baseline"]["cnn_auroc"] == meta["metrics"]["test"]["auroc"]
    assert meta["baseline"]["beats_baseline"] == (meta["metrics"]["test"]["auroc"] > base["auroc"])
    assert ("warning" in meta["baseline"]) != meta["baseline"]["beats_baseline"]
    assert 0.5 < meta["metrics"]["test_strand_average"]["auroc"] <= 1


def test_a_model_below_the_baseline_gets_a_warning(trained, capsys):
    from training.datasets import load_h5
    from training.pipeline import baseline_check, report_baseline

    ds = load_h5(trained["data"])
    noise = np.random.default_rng(0).random(len(ds.y["test"]))
    record = baseline_check(ds, noise)
    assert record["beats_baseline"] is False and record["auroc_margin"] < 0
    report_baseline(record)
    assert "WARNING: failed export check" in capsys.readouterr().err
    perfect = baseline_check(ds, ds.y["test"][:, 0])
    assert perfect["beats_baseline"] and "warning" not in perfect


def test_evaluate_prints_the_baseline_and_both_strands(trained, tmp_path, capsys):
    from training.cli import main

    assert main(["evaluate", "--model", str(trained["dir"]), "--data", str(trained["data"]),
                 "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "PWM baseline (MA0139.1 CTCF)" in printed and "both strands averaged" in printed
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["pwm_baseline"]["test"]["auroc"] == trained["meta"]["baseline"]["pwm"]["auroc"]
    assert abs(saved["strand_average"]["test"]["auroc"]
               - trained["meta"]["metrics"]["test_strand_average"]["auroc"]) < 1e-4
