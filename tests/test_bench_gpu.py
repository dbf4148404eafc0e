"""The GPU benchmark's own pieces, checked on the CPU: its float16 graph computes the model, its proof reads the
provider of each node from a real session profile, and a CUDA fallback is reported as such (exit code 1)."""
from __future__ import annotations

import numpy as np

from benchmarks import bench_gpu
from serving.artifact import scaled_difference


def test_float16_graph_computes_the_model(trained, predictor, tmp_path):
    import onnxruntime as ort

    path = bench_gpu.float16_graph(trained["dir"] / "model.onnx", tmp_path / "fp16.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].type == "tensor(float16)"
    x = bench_gpu.onehot_batch(256)
    logit16 = sess.run(["logit"], {"dna": x.astype(np.float16)})[0].reshape(-1).astype(np.float32)
    logit32 = predictor.predict_onehot(x)["logit"]
    assert np.all(np.isfinite(logit16))
    assert scaled_difference(logit16, logit32).max() < 2e-2  # float16 rounding, not another model
    assert not np.allclose(logit16, logit32, rtol=0, atol=0)  # and really computed in float16


def test_node_providers_reads_the_profile(trained, tmp_path):
    sess = bench_gpu.session(trained["dir"] / "model.onnx", ["CPUExecutionProvider"], profile=str(tmp_path / "p"))
    nodes = bench_gpu.node_providers(sess, bench_gpu.onehot_batch(32))
    assert nodes and {prov for _, prov in nodes} == {"CPUExecutionProvider"}
    assert any(op == "Conv" for op, _ in nodes)


def test_fallback_is_reported_and_fails(trained, tmp_path, monkeypatch):
    """Without a usable CUDA provider the benchmark says so and exits 1 instead of timing the CPU as 'cuda'."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # no usable GPU, also on a machine that has one
    out = tmp_path / "gpu.md"
    code = bench_gpu.main(["--model", str(trained["dir"]), "--out", str(out), "--quick"])
    text = out.read_text()
    assert code == 1 and "**No CUDA**" in text and "CPUExecutionProvider" in text
