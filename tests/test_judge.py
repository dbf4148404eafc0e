"""`bindcnn judge`: per seed a fresh synthetic set and model, the CNN beside the PWM baseline and the on-motif rate
of each attribution method; mean and spread over seeds (tiny sets and one epoch here: the mechanics, not values)."""
import json

import numpy as np

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
