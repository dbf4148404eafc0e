"""serving.predictor: provider choice and CPU fallback, and predictions equal to the session's own."""
import sys

import numpy as np
import pytest

from serving.dna import decode, reverse_complement


@pytest.fixture(scope="module")
def x(trained):
    from training.datasets import load_h5

    return load_h5(trained["data"]).x["test"][:300]


def test_auto_asks_cuda_only_where_an_nvidia_device_exists(monkeypatch):
    import onnxruntime as ort

    import serving.predictor as p

    monkeypatch.setattr(p, "nvidia_device_present", lambda: False)
    assert p.choose_providers("auto") == ["CPUExecutionProvider"]
    monkeypatch.setattr(p, "nvidia_device_present", lambda: True)
    expected = (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in ort.get_available_providers() else []) \
        + ["CPUExecutionProvider"]
    assert p.choose_providers("auto") == expected
    assert p.choose_providers("cpu") == ["CPUExecutionProvider"]


def test_cuda_request_reports_the_provider_really_used(trained, x):
    """Asked for CUDA first: where CUDA cannot run, the session says CPU and so does the predictor."""
    from serving.predictor import Predictor, nvidia_device_present

    pred = Predictor(trained["dir"], device="cuda")
    assert pred.providers == pred.session.get_providers()
    if not nvidia_device_present():
        assert pred.providers[0] == "CPUExecutionProvider" and pred.device == "cpu"
    assert pred.describe()["device"] == pred.device
    np.testing.assert_allclose(pred.predict_onehot(x)["probability"],
                               Predictor(trained["dir"], device="cpu").predict_onehot(x)["probability"], atol=1e-5)


def test_predictions_equal_the_onnx_session(trained, x):
    import onnxruntime as ort

    from serving.predictor import Predictor

    pred = Predictor(trained["dir"], device="cpu", chunk_size=64)
    sess = ort.InferenceSession(str(trained["dir"] / "model.onnx"), providers=["CPUExecutionProvider"])
    prob, logit = sess.run(["prob", "logit"], {"dna": x})
    out = pred.predict_onehot(x)
    assert out["probability"].shape == (300,) and out["probability"].dtype == np.float32
    np.testing.assert_allclose(out["probability"], prob[:, 0], atol=1e-6)
    np.testing.assert_allclose(out["logit"], logit[:, 0], atol=1e-5)
    for n in (1, 5, 8, 9):  # the small-batch session and the pool session agree
        np.testing.assert_allclose(pred.predict_onehot(x[:n])["logit"], logit[:n, 0], atol=1e-5)
    np.testing.assert_allclose(pred.predict_sequences(decode(x))["logit"], out["logit"], atol=1e-6)
    np.testing.assert_allclose(pred.predict_array(x.transpose(0, 2, 1).astype(np.uint8))["logit"], out["logit"],
                               atol=1e-6)
    rc = pred.predict_onehot(x, reverse_complement_average=True)
    both = (logit[:, 0] + sess.run(["logit"], {"dna": np.ascontiguousarray(reverse_complement(x))})[0][:, 0]) / 2
    np.testing.assert_allclose(rc["logit"], both, atol=1e-5)
    np.testing.assert_allclose(rc["probability"], 1 / (1 + np.exp(-both)), atol=1e-6)
    with pytest.raises(ValueError, match="length 10, the model expects 200"):
        pred.predict_sequences(["ACGTACGTAC"])


def test_predict_path_does_not_import_tensorflow(trained, tmp_path):
    import subprocess

    code = ("import sys; from serving.predictor import Predictor; "
            f"p = Predictor({str(trained['dir'])!r}); p.predict_sequences(['A' * 200]); "
            "import serving.scoring.score, serving.scoring.scan, serving.scoring.variants, serving.scoring.mutagenesis, "
            "serving.scoring.outputs, serving.client, serving.cli; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
