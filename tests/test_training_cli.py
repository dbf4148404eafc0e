"""The training commands of the one command line (`bindcnn`, `python -m training`): every command's --help, outputs,
and exit codes for bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest

from serving.cli import EXIT_USAGE as EXIT_BAD_INPUT
from serving.cli import main

from serving.cli.parsers import TRAINING_COMMANDS as COMMANDS  # noqa: E402 (every training command, one list)


def test_help_for_every_command():
    out = subprocess.run([sys.executable, "-m", "training", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and all(c in out.stdout for c in COMMANDS)
    for command in COMMANDS:
        r = subprocess.run([sys.executable, "-m", "training", command, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "usage:" in r.stdout, command


def test_synthetic_and_fasta_commands(tmp_path, capsys):
    from serving.fasta import write_fasta
    from training.datasets import load_h5

    assert main(["synthetic", "--out", str(tmp_path / "s.h5"), "--n", "500", "--seed", "2"]) == 0
    ds = load_h5(tmp_path / "s.h5")
    assert sum(ds.sizes().values()) == 500 and "MA0139.1" in ds.description
    assert "wrote" in capsys.readouterr().err
    seqs = ["".join(np.random.default_rng(i).choice(list("ACGT"), 80)) for i in range(30)]
    write_fasta([(f"r{i}", s) for i, s in enumerate(seqs)], tmp_path / "p.fa.gz")
    assert main(["fasta", "--positives", str(tmp_path / "p.fa.gz"), "--out", str(tmp_path / "f.h5")]) == 0
    assert load_h5(tmp_path / "f.h5").length == 80


def test_download_reads_a_url_and_validates(tmp_path, synthetic_h5):
    # file:// stands in for Zenodo: the same code path, no network
    assert main(["download", "--out", str(tmp_path / "d.h5"), "--url", synthetic_h5.as_uri()]) == 0
    assert (tmp_path / "d.h5").read_bytes() == synthetic_h5.read_bytes()
    (tmp_path / "junk.h5").write_text("not hdf5")
    assert main(["download", "--out", str(tmp_path / "e.h5"), "--url", (tmp_path / "junk.h5").as_uri()]) \
        == EXIT_BAD_INPUT
    assert not (tmp_path / "e.h5").exists() and not (tmp_path / "e.h5.part").exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "/nonexistent.h5"], "no such file"),
    (["train", "--name", "Bad Name"], "model name 'Bad Name' is not valid"),
    (["evaluate", "--model", "/nonexistent", "--data", "x.h5"], "does not exist"),
])
def test_bad_input_exits_2_with_a_message(argv, message, capsys):
    assert main(argv) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


def test_evaluate_and_saliency_commands(trained, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(trained["dir"]), "--data", str(trained["data"]),
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    assert metrics == pytest.approx(trained["meta"]["metrics"]["test"], abs=1e-5)  # ONNX == Keras metrics
    assert (out / "roc_pr.png").stat().st_size > 1000
    sal = tmp_path / "sal"
    assert main(["saliency", "--model", str(trained["dir"]), "--data", str(trained["data"]), "--top", "3",
                 "--out", str(sal)]) == 0
    assert len(list(sal.glob("logo_*.png"))) == 3 and (sal / "heatmap.png").exists()
    assert np.load(sal / "scores.npy").shape == (3, 200, 4)
    rows = (sal / "top.tsv").read_text().splitlines()
    assert rows[0].startswith("rank\tindex\tprobability") and len(rows) == 4
    probs = [float(r.split("\t")[2]) for r in rows[1:]]
    assert probs == sorted(probs, reverse=True)
    assert str(sal) in capsys.readouterr().err


def test_saliency_explains_every_fasta_record_in_input_order(trained, tmp_path, capsys):
    from serving.attribution import attribute, load_logits_fn
    from serving.dna import decode
    from serving.fasta import write_fasta
    from serving.predictor import Predictor
    from training.datasets import load_h5

    x = load_h5(trained["data"]).x["test"][:6]
    ids = ["chr1:100-300", "peak_b", "c|x", "d", "peak_b", "f"]
    write_fasta(zip(ids, decode(x)), tmp_path / "mine.fa")
    out = tmp_path / "sal"
    assert main(["saliency", "--model", str(trained["dir"]), "--fasta", str(tmp_path / "mine.fa"),
                 "--method", "gradient", "--out", str(out)]) == 0
    scores = np.load(out / "scores.npy")
    assert scores.shape == (6, 200, 4)
    np.testing.assert_allclose(scores, attribute(load_logits_fn(trained["dir"]), x, "gradient"), atol=1e-6)
    assert (out / "ids.txt").read_text().split() == ids
    logos = [row.split("\t")[5] for row in (out / "records.tsv").read_text().splitlines()[1:]]
    assert logos == ["logo_chr1_100-300.png", "logo_peak_b.png", "logo_c_x.png", "logo_d.png", "logo_peak_b_5.png",
                     "logo_f.png"]
    assert all((out / name).read_bytes()[:4] == b"\x89PNG" for name in logos)
    assert "scores.npy (6, 200, 4)" in capsys.readouterr().err

    prob = Predictor(trained["dir"], device="cpu").predict_onehot(x)["probability"]
    top = tmp_path / "top"
    assert main(["saliency", "--model", str(trained["dir"]), "--fasta", str(tmp_path / "mine.fa"), "--top", "2",
                 "--method", "corrected", "--out", str(top)]) == 0
    kept = sorted(np.argsort(-prob)[:2])  # the two most confident, in input order
    assert (top / "ids.txt").read_text().split() == [ids[i] for i in kept]
    np.testing.assert_allclose(np.load(top / "scores.npy"),
                               attribute(load_logits_fn(trained["dir"]), x[kept], "corrected"), atol=1e-6)


def test_saliency_fasta_errors_name_the_record(trained, tmp_path, capsys):
    from serving.fasta import write_fasta

    write_fasta([("ok", "A" * 200), ("short_one", "ACGT" * 10)], tmp_path / "bad.fa")
    assert main(["saliency", "--model", str(trained["dir"]), "--fasta", str(tmp_path / "bad.fa"),
                 "--out", str(tmp_path / "o")]) == EXIT_BAD_INPUT
    assert "record 2 ('short_one') has length 40" in capsys.readouterr().err
    write_fasta([("ok", "A" * 199 + "X")], tmp_path / "x.fa")
    assert main(["saliency", "--model", str(trained["dir"]), "--fasta", str(tmp_path / "x.fa"),
                 "--corrected", "--method", "gradient"]) == EXIT_BAD_INPUT
    assert "--corrected contradicts --method gradient" in capsys.readouterr().err
