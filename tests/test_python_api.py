"""The Python door (serving/model.py): docs/python.md's example runs as written, and each method gives what the
command line's code gives for the same input."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from serving import load_model
from serving.dna import SequenceError, random_dna

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def test_the_docs_example_runs_as_written(trained):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert 'load_model("models/ctcf")' in code
    exec(compile(code.replace('"models/ctcf"', repr(str(trained["dir"]))), str(DOC), "exec"), {})


def test_methods_match_the_predictor_and_the_scoring_code(trained, predictor):
    from serving.scoring.mutagenesis import saturation_mutagenesis
    from serving.scoring.scan import scan_sequence

    model = load_model(trained["dir"])
    seqs = random_dna(3, 200, seed=5)
    np.testing.assert_allclose(model.predict(seqs)["logit"], predictor.predict_sequences(seqs)["logit"], atol=1e-5)
    from serving.dna import encode

    np.testing.assert_allclose(model.predict(encode(seqs))["logit"], predictor.predict_sequences(seqs)["logit"],
                               atol=1e-5)
    long = "".join(random_dna(1, 700, seed=6))
    track = model.scan(long, stride=7)
    want = scan_sequence(predictor, long, 7)
    np.testing.assert_array_equal(track["start"], want.starts)
    np.testing.assert_allclose(track["logit"], want.logit, atol=1e-5)
    np.testing.assert_allclose(model.mutagenesis(seqs[0]), saturation_mutagenesis(predictor, seqs[0])[0], atol=1e-5)
    rows = model.variants(long, [{"pos": 350, "ref": long[349], "alt": "N" if long[349] != "N" else "A"},
                                 (5, long[4], "G" if long[4] != "G" else "C", "edge")])
    assert rows[0]["status"] == "ok" and rows[1]["status"] != "ok"  # 5 bp from the start: no centred window
    with pytest.raises(SequenceError, match="position 3"):
        model.predict(["AC?" + "A" * 197])


def test_a_store_tag_loads_the_registered_model(trained):
    model = load_model(trained["tag"])
    assert model.metadata["version"] == trained["meta"]["version"]


def test_loading_tensorflow_for_attribution_says_so(trained):
    """TensorFlow's start-up takes seconds: whoever asks for an attribution (Model.attribute, `bindcnn saliency`,
    the explainer) is told what it waits for, then how long it took (issue 27.11)."""
    import subprocess
    import sys

    code = ("import sys; from serving.attribution import load_logits_fn; load_logits_fn(sys.argv[1]); "
            "print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(trained["dir"])], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    loading = [i for i, s in enumerate(lines) if s.startswith("loading TensorFlow")]
    ready = [i for i, s in enumerate(lines) if s.startswith("attribution model ready in")]
    assert loading and ready and loading[0] < ready[0], done.stderr
    assert done.stdout.strip() == "True"
