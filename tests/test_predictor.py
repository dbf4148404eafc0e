"""serving.predictor: provider choice and CPU fallback, predictions equal to ONNX Runtime's own session whatever the
settings, nothing written at start (model folder, $HOME), the fingerprint check, and `bindcnn tune`'s plan in
metadata.json (used when it matches, ignored with a note when it does not, checksums still verified)."""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from serving.dna import decode, reverse_complement


@pytest.fixture(scope="module")
def x(trained):
    from training.datasets import load_h5

    return load_h5(trained["data"]).x["test"][:300]


@pytest.fixture(scope="module")
def reference(trained, x):
    """(prob (300,), logit (300,)) from model.onnx on ONNX Runtime's default options, one run."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(trained["dir"] / "model.onnx"), providers=["CPUExecutionProvider"])
    prob, logit = sess.run(["prob", "logit"], {"dna": x})
    return prob[:, 0], logit[:, 0]


def _copy(trained, tmp_path, name="m"):
    dst = tmp_path / name
    shutil.copytree(trained["dir"], dst)
    return dst


def _snapshot(folder):
    """{relative path: (size, mtime_ns)} of every file and folder below folder."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


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
        assert pred.describe()["settings"]["source"] == "fixed defaults"  # the CPU settings, not CUDA's
    assert pred.describe()["device"] == pred.device
    np.testing.assert_allclose(pred.predict_onehot(x)["probability"],
                               Predictor(trained["dir"], device="cpu").predict_onehot(x)["probability"], atol=1e-5)


def test_predictions_equal_the_onnx_session(trained, x, reference):
    from serving.predictor import Predictor

    prob, logit = reference
    pred = Predictor(trained["dir"], device="cpu", chunk_size=64)
    out = pred.predict_onehot(x)
    assert out["probability"].shape == (300,) and out["probability"].dtype == np.float32
    np.testing.assert_allclose(out["probability"], prob, atol=1e-6)
    np.testing.assert_allclose(out["logit"], logit, atol=1e-5)
    np.testing.assert_allclose(pred.predict_sequences(decode(x))["logit"], out["logit"], atol=1e-6)
    np.testing.assert_allclose(pred.predict_array(x.transpose(0, 2, 1).astype(np.uint8))["logit"], out["logit"],
                               atol=1e-6)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(trained["dir"] / "model.onnx"), providers=["CPUExecutionProvider"])
    rc = pred.predict_onehot(x, reverse_complement_average=True)
    both = (logit + sess.run(["logit"], {"dna": np.ascontiguousarray(reverse_complement(x))})[0][:, 0]) / 2
    np.testing.assert_allclose(rc["logit"], both, atol=1e-5)
    np.testing.assert_allclose(rc["probability"], 1 / (1 + np.exp(-both)), atol=1e-6)
    with pytest.raises(ValueError, match="length 10, the model expects 200"):
        pred.predict_sequences(["ACGTACGTAC"])


@pytest.mark.parametrize("threads, split, chunk", [(2, True, 64), (3, True, 7), (2, False, 100), (1, True, 256)])
@pytest.mark.parametrize("n", [0, 1, 8, 9, 257])
def test_every_setting_keeps_the_order_and_the_values(trained, x, reference, threads, split, chunk, n):
    """Runs split over Python threads or run one after the other, one-hot or codes, one strand or both: the
    session's own outputs, in input order."""
    from serving.predictor import Predictor, Settings

    pred = Predictor(trained["dir"], device="cpu", verify=False, settings=Settings(threads, split, chunk))
    try:
        out = pred.predict_onehot(x[:n])
        assert out["logit"].shape == (n,)
        np.testing.assert_allclose(out["logit"], reference[1][:n], atol=1e-5)
        np.testing.assert_allclose(out["probability"], reference[0][:n], atol=1e-6)
        codes = np.where(x[:n].any(-1), x[:n].argmax(-1), 4).astype(np.uint8)
        by_codes = pred.predict_codes(codes)
        np.testing.assert_array_equal(by_codes["logit"], out["logit"])
        np.testing.assert_array_equal(by_codes["probability"], out["probability"])
        np.testing.assert_allclose(pred.predict_codes(codes, reverse_complement_average=True)["logit"],
                                   pred.predict_onehot(x[:n], reverse_complement_average=True)["logit"], atol=1e-6)
    finally:
        pred.close()


def test_runs_are_equal_and_a_multiple_of_the_threads():
    from serving.predictor import part_bounds

    assert part_bounds(0, 256, 2) == [(0, 0)] and part_bounds(200, 256, 2) == [(0, 200)]
    for n, chunk, ways in ((1000, 256, 2), (4096, 256, 2), (257, 256, 3), (10, 3, 4)):
        bounds = part_bounds(n, chunk, ways)
        sizes = [b - a for a, b in bounds]
        assert bounds[0][0] == 0 and bounds[-1][1] == n and all(b == c for (_, b), (c, _) in zip(bounds, bounds[1:]))
        assert max(sizes) <= chunk and max(sizes) - min(sizes) <= 1 and len(bounds) % ways == 0, (n, chunk, ways)


def test_threads_default_to_the_cores_given(trained):
    from serving.predictor import Predictor, cores_given

    pred = Predictor(trained["dir"], device="cpu", verify=False)
    assert pred.settings.threads == cores_given() >= 1
    assert (pred.pool is not None) == (cores_given() > 1)
    one = Predictor(trained["dir"], device="cpu", verify=False, threads=1)
    assert one.settings.threads == 1 and one.pool is None
    assert one.session.get_session_options().intra_op_num_threads == 1


def test_a_fresh_model_folder_and_home_stay_untouched(trained, tmp_path):
    """Nothing is timed or written at start: a Predictor (and `score --local`) leaves the model folder's files and
    mtimes as they were, and writes nothing into $HOME."""
    model = _copy(trained, tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    before = _snapshot(model)
    fa = tmp_path / "in.fa"
    fa.write_text("".join(f">r{i}\n{'ACGT' * 50}\n" for i in range(20)))
    code = ("import sys\nfrom serving.predictor import Predictor\n"
            f"p = Predictor({str(model)!r})\np.predict_sequences(['A' * 200] * 1000)\n"
            "from serving.cli import main\n"
            f"sys.exit(main(['score', {str(fa)!r}, '--local', '--model', {str(model)!r}, '-o', "
            f"{str(tmp_path / 'out.tsv')!r}, '-q']))\n")
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert len((tmp_path / "out.tsv").read_text().splitlines()) == 21
    assert _snapshot(model) == before
    assert list(home.iterdir()) == []


def test_first_score_is_not_slower_than_the_second(trained, tmp_path):
    """No stopwatch at start: the first `bindcnn score --local` on a copy of a model folder takes no longer than the
    second, give or take 1.5 s (a behaviour check with a generous bound for a shared machine)."""
    model = _copy(trained, tmp_path)
    fa = tmp_path / "in.fa"
    fa.write_text("".join(f">r{i}\n{'ACGTTGCA' * 25}\n" for i in range(2000)))
    took = []
    for run in range(2):
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "serving", "score", str(fa), "--local", "--model", str(model),
                              "-o", str(tmp_path / f"out{run}.tsv"), "-q"], capture_output=True, text=True,
                             timeout=300)
        took.append(time.perf_counter() - t0)
        assert res.returncode == 0, res.stderr
    assert took[0] <= took[1] + 1.5, took


def test_the_fingerprint_refuses_an_onnx_file_of_other_weights(trained, tmp_path):
    """The probe batch is made in memory at every start; an ONNX file whose weights differ from the SavedModel's
    is refused even with its checksum rewritten to match (verify=False skips the checksums here)."""
    import onnx
    from onnx import numpy_helper

    from serving.artifact import ArtifactError
    from serving.predictor import Predictor

    model = _copy(trained, tmp_path)
    proto = onnx.load(str(model / "model.onnx"))
    bias = next(n for n in proto.graph.node if n.op_type == "Conv").input[2]  # the conv's bias, shifted
    init = next(i for i in proto.graph.initializer if i.name == bias)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 0.5, bias))
    onnx.save(proto, str(model / "model.onnx"))
    with pytest.raises(ArtifactError, match="disagrees with the SavedModel logits"):
        Predictor(model, device="cpu", verify=False)


def test_tune_stores_a_plan_that_is_used_where_it_matches(trained, tmp_path, caplog):
    """`bindcnn tune` writes runtime_plan into metadata.json (the checksums still verify); a predictor with the same
    model file, CPU, threads and ONNX Runtime uses it; one with other threads, or a plan for another model.onnx,
    notes it in one line and keeps the fixed settings."""
    from serving.artifact import verify_model_dir
    from serving.cli import main
    from serving.predictor import PLAN_KEY, Predictor, Settings

    model = _copy(trained, tmp_path)
    assert main(["tune", "--model", str(model), "--threads", "2", "--rounds", "1"]) == 0
    meta = verify_model_dir(model)  # metadata.json changed, every checksum still holds
    plan = meta[PLAN_KEY]
    assert plan["tuned_for"]["model.onnx"] == meta["files"]["model.onnx"] and plan["tuned_for"]["threads"] == 2
    assert set(plan["measured"]) >= {Settings(2).name} and Settings(**plan["settings"]).threads == 2
    used = Predictor(model, device="cpu", threads=2)
    assert used.settings == Settings(**plan["settings"]) and "bindcnn tune" in used.source
    caplog.clear()
    other = Predictor(model, device="cpu", threads=1)
    assert other.settings == Settings(1) and other.source == "fixed defaults"
    notes = [r.getMessage() for r in caplog.records if "runtime_plan" in r.getMessage()]
    assert len(notes) == 1 and "threads=2 (here 1)" in notes[0]
    stale = dict(meta, **{PLAN_KEY: {**plan, "settings": {"threads": 2, "split": False, "chunk": 7},
                                     "tuned_for": {**plan["tuned_for"], "model.onnx": "0" * 64}}})
    (model / "metadata.json").write_text(json.dumps(stale))
    assert Predictor(model, device="cpu", threads=2).settings == Settings(2)
    assert main(["tune", "--model", str(tmp_path / "nothing")]) == 2


def test_predict_path_does_not_import_tensorflow(trained, tmp_path):
    code = ("import sys; from serving.predictor import Predictor; "
            f"p = Predictor({str(trained['dir'])!r}); p.predict_sequences(['A' * 200]); "
            "import serving.scoring.score, serving.scoring.scan, serving.scoring.variants, "
            "serving.scoring.mutagenesis, serving.scoring.outputs, serving.client, serving.cli, serving.tuning; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_a_cpu_without_avx512_runs_the_8_channel_block_graph_of_the_same_weights(trained):
    """Export writes model.block8.onnx beside model.onnx (parity-checked, in metadata "cpu_graphs"); the predictor
    picks it by a CPU-feature rule, never by timing, and it scores as model.onnx does."""
    import onnxruntime as ort

    from serving.artifact import probe_inputs
    from serving.predictor import cpu_graph

    meta = trained["meta"]
    narrow = meta["cpu_graphs"]["no_avx512"]
    assert narrow["channel_block"] == 8 and (trained["dir"] / narrow["file"]).is_file()
    assert narrow["file"] in meta["files"]  # checksummed like every file of the folder
    assert cpu_graph(meta, avx512=True)[0] == "model.onnx"
    assert cpu_graph(meta, avx512=False)[0] == narrow["file"]
    assert cpu_graph({k: v for k, v in meta.items() if k != "cpu_graphs"}, avx512=False)[0] == "model.onnx"
    x = probe_inputs(200, 64)
    wide, slim = (ort.InferenceSession(str(trained["dir"] / f), providers=["CPUExecutionProvider"]).run(["logit"], {
        "dna": x})[0] for f in ("model.onnx", narrow["file"]))
    np.testing.assert_allclose(slim, wide, atol=1e-5 * max(1.0, float(np.abs(wide).max())))


def test_a_folder_exported_before_the_8_channel_graph_says_how_to_add_it(trained, tmp_path, monkeypatch, capsys):
    """On a CPU without AVX-512, a folder without "cpu_graphs" (exported before model.block8.onnx) scores with
    model.onnx, saying once which command adds the faster layout; with AVX-512, or with the graph, nothing is said."""
    import serving.predictor as sp
    from serving.artifact import METADATA_FILE, write_metadata

    old = shutil.copytree(trained["dir"], tmp_path / "old")
    meta = json.loads((old / METADATA_FILE).read_text())
    (old / meta.pop("cpu_graphs")["no_avx512"]["file"]).unlink()
    meta.pop("files")
    write_metadata(old, meta)
    for avx512, folder, noted in ((False, old, True), (True, old, False), (False, trained["dir"], False)):
        monkeypatch.setattr(sp, "cpu_has_avx512", lambda: avx512)
        sp.Predictor(folder, device="cpu")
        err = capsys.readouterr().err
        assert (f"bindcnn export --model {folder}" in err) == noted, (avx512, folder, err)
        if noted:
            assert sp.Predictor(folder, device="cpu").graph == "model.onnx"
            assert "model.block8.onnx" not in capsys.readouterr().err  # once per folder
