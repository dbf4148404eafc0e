"""`bindcnn motifs`: expected-gradients attributions of the sequences the test model calls bound, TF-MoDISco,
TomTom against JASPAR CORE vertebrates: the top pattern is CTCF's matrix, and the report is written."""
import numpy as np

from training.cli import EXIT_BAD_INPUT, main


def test_top_pattern_is_the_ctcf_matrix(trained, tmp_path, capsys):
    out = tmp_path / "motifs"
    assert main(["motifs", "--model", str(trained["dir"]), "--data", str(trained["data"]), "--n", "300",
                 "--out", str(out)]) == 0
    rows = [line.split("\t") for line in (out / "motifs.tsv").read_text().splitlines()]
    header, top = rows[0], dict(zip(rows[0], rows[1]))
    assert header[:7] == ["pattern", "seqlets", "length", "match_id", "match_name", "p_value", "q_value"]
    assert top["pattern"] == "pattern_0" and top["match_id"].startswith("MA0139.") and top["match_name"] == "CTCF"
    assert float(top["q_value"]) < 0.05 and int(top["seqlets"]) >= 20
    assert (out / top["logo"]).read_bytes()[:4] == b"\x89PNG"
    summary = (out / "summary.md").read_text()
    assert "| pattern_0 |" in summary and "JASPAR CORE vertebrate" in summary
    assert "pattern_0" in capsys.readouterr().out


def test_q_values_and_bad_input(trained, tmp_path, capsys):
    from training.motifs import bh_qvalues

    p = np.array([0.01, 0.04, 0.03, 0.5])
    np.testing.assert_allclose(bh_qvalues(p), [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert main(["motifs", "--model", str(trained["dir"]), "--data", str(trained["data"]),
                 "--jaspar-release", "JASPAR1999", "--n", "5", "--out", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "pyjaspar has no release 'JASPAR1999'; it has JASPAR2014" in capsys.readouterr().err
