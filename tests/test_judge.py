"""`bindcnn judge`: per seed a fresh synthetic set and model, the CNN beside the PWM baseline and the on-motif rate
of each attribution method; mean and spread over seeds (tiny sets and one epoch here: the mechanics, not values)."""
import json

import numpy as np
import pytest

from training.cli import main


def test_judge_reports_every_seed_and_the_spread(tmp_path, capsys):
    out = tmp_path / "judge"
    assert main(["judge", "--seeds", "0", "1", "--n", "500", "--epochs", "1", "--methods", "gradient",
                 "--attribution-n", "12", "--out", str(out)]) == 0
    saved = json.loads((out / "judge.json").read_text())
    rows = saved["rows"]
    assert [r["seed"] for r in rows] == [0, 1] and rows[0]["cnn_auroc"] != rows[1]["cnn_auroc"]
    for r in rows:
        assert 0 <= r["on_motif_gradient"] <= 1 and 0.5 < r["pwm_auroc"] <= 1 and r["epochs"] == 1
        assert abs(r["margin"] - (r["cnn_auroc"] - r["pwm_auroc"])) < 1e-9
    mean, sd = saved["summary"]["cnn_auroc"]
    assert abs(mean - np.mean([r["cnn_auroc"] for r in rows])) < 1e-9 and sd > 0
    printed = capsys.readouterr().out
    assert "| mean +- SD |" in printed and "on_motif_gradient" in printed and (out / "judge.md").exists()


def test_top_window_measure():
    from training.evaluate import top_window_hits

    scores = np.zeros((3, 200, 4), np.float32)
    scores[0, 50:69, 0] = 1  # on the instance
    scores[1, 150:169, 0] = 1  # far from it
    scores[2, 75:94, 0] = 1  # overlapping its last base
    motif = np.array([[50, 69, 1], [50, 69, -1], [55, 76, 1], [-1, -1, 0]])[:3]
    assert top_window_hits(scores, motif).tolist() == [True, False, True]
    assert top_window_hits(scores, np.array([[-1, -1, 0]] * 3)).size == 0


# ------------------------------------------------------------------------------ judge --attribution
def test_planted_recovery_scores_each_carrier():
    from training.evaluate import planted_recovery

    scores = np.zeros((3, 50), np.float32)
    scores[0, 10:20] = 1  # exactly the instance
    scores[1] = 1
    scores[1, 10:20] = 0  # everywhere but the instance: the worst ranking
    motif = np.array([[10, 20, 1], [10, 20, -1], [-1, -1, 0]])
    roc, pr = planted_recovery(scores, motif)
    assert roc.tolist() == [1.0, 0.0] and pr[0] == 1.0 and pr[1] == pytest.approx(0.2)  # the third carries nothing


def test_every_method_finds_the_positions_a_model_reads():
    """A linear model whose logit reads only positions 20-38 (one base preferred at each): each method's magnitude
    ranks those positions first, in every sequence."""
    import tensorflow as tf

    from serving.dna import encode, random_dna
    from training.evaluate import planted_recovery
    from training.judge_attribution import JUDGED, position_magnitude

    w = np.zeros((60, 4), np.float32)
    w[20:39] = 0.2
    w[np.arange(20, 39), np.random.default_rng(0).integers(0, 4, 19)] = 2  # a preferred base at each position
    fn = lambda x: tf.reduce_sum(tf.cast(x, tf.float32) * w, axis=(1, 2))[:, None]  # noqa: E731
    x = encode(random_dna(6, 60, seed=3))
    motif = np.tile([20, 39, 1], (6, 1))
    for method in JUDGED:
        mags = position_magnitude(fn, x, method)
        assert mags.shape == (6, 60) and np.all(mags[:, :20] == 0), method
        roc, pr = planted_recovery(mags, motif)
        assert roc.min() > 0.9 and pr.min() > 0.8, (method, roc, pr)


def test_judge_attribution_writes_a_tsv_and_markdown_per_seed_and_method(tmp_path, capsys):
    out = tmp_path / "ja"
    assert main(["judge", "--attribution", "--seeds", "0", "1", "--n", "600", "--epochs", "1", "--attribution-n", "8",
                 "--methods", "gradient", "ism", "--out", str(out)]) == 0
    lines = [r.split("\t") for r in (out / "attribution.tsv").read_text().splitlines()]
    assert lines[0] == ["seed", "method", "auroc", "aupr", "sequences", "model_auroc", "seconds"]
    assert [(r[0], r[1]) for r in lines[1:]] == [("0", "gradient"), ("0", "ism"), ("1", "gradient"), ("1", "ism")]
    for r in lines[1:]:
        assert 0 <= float(r[2]) <= 1 and 0 < float(r[3]) <= 1 and int(r[4]) == 8
    md = (out / "attribution.md").read_text()
    assert "bindcnn judge --attribution --seeds 0 1 --n 600" in md and "| ism |" in md and "Highest mean AUROC" in md
    assert md in capsys.readouterr().out
    assert main(["judge", "--methods", "ism", "--seeds", "0", "--out", str(tmp_path / "j")]) == 2  # ISM: --attribution
