"""serving.calibration: the per-machine choice of graph and session settings picks only among candidates that pass
parity, is cached (next to the model, or in the user cache when the model folder is read-only) and /model reports it.
No timing assertions: a fake timer decides which candidate is 'fastest'."""
import json
import shutil

import numpy as np
import pytest

from serving import calibration as cal
from serving import calibration_cache as cache
from serving.artifact import read_metadata
from serving.runner import Plan, Runner


def _copy(trained, tmp_path, name="m"):
    dst = tmp_path / name
    shutil.copytree(trained["dir"], dst, ignore=shutil.ignore_patterns("saved_model", "calibration"))
    return dst


def _add_broken_variant(model_dir):
    """A variant graph with the conv bias shifted: loads and runs, but gives other logits."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model_dir / "model.onnx"))
    for init in proto.graph.initializer:
        if init.name == "conv_b":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 0.5, "conv_b"))
    onnx.save(proto, str(model_dir / "model.broken.onnx"))
    meta = json.loads((model_dir / "metadata.json").read_text())
    meta.setdefault("onnx_variants", {})["broken"] = {"file": "model.broken.onnx"}
    (model_dir / "metadata.json").write_text(json.dumps(meta))
    return read_metadata(model_dir)


def _prefer(graph):
    """A timer under which every plan on `graph` looks 10x faster than the rest (runs each call once)."""
    calls = []

    def timer(plan, call):
        call()
        calls.append(plan)
        return 0.001 if plan.graph == graph else 0.01

    timer.calls = calls
    return timer


def test_export_writes_variants_that_passed_parity(trained):
    variants = trained["meta"].get("onnx_variants") or {}
    assert variants, "the direct graph has a layout variant (filters padded to 8 instead of 16)"
    for name, info in variants.items():
        assert (trained["dir"] / info["file"]).is_file() and info["file"] in trained["meta"]["files"]
        assert info["parity"]["max_scaled_logit_diff"] <= 1e-5


def test_calibration_never_picks_a_variant_that_fails_parity(trained, tmp_path):
    m = _copy(trained, tmp_path)
    meta = _add_broken_variant(m)
    timer = _prefer("broken")
    record = cal.calibrate(m, meta, threads=0, timer=timer)
    plan = record["plan"]
    assert plan["graph"] != "broken"
    broken = [name for name in record["rejected"] if name.startswith("broken |")]
    assert broken and all("parity" in record["rejected"][n] for n in broken)
    assert all(p.graph != "broken" for p in timer.calls)  # a rejected candidate is never even timed
    # every candidate that was timed passed parity, and the chosen one's differences are recorded
    assert set(record["measured"]).isdisjoint(record["rejected"])
    chosen = record["parity"][plan["name"]]
    assert chosen["vs_onnx"] <= 1e-5 and chosen["vs_tensorflow"] <= chosen["tensorflow_tolerance"]
    # the faster-looking good variant wins over model.onnx under this timer
    good = [g for g in meta["onnx_variants"] if g != "broken"]
    record = cal.calibrate(m, meta, threads=0, timer=_prefer(good[0]))
    assert record["plan"]["graph"] == good[0]


def test_choice_runs_like_the_reference(trained, tmp_path):
    from serving.predictor import Predictor

    m = _copy(trained, tmp_path)
    meta = read_metadata(m)
    x = cal.parity_inputs(meta["sequence_length"], 300)
    ref = Runner(m, cal.BASELINE, meta["input_name"]).run(x)[1]
    for plan in cal.candidates(meta, threads=0):
        got = Runner(m, plan, meta["input_name"]).run(x)[1]
        np.testing.assert_allclose(got, ref, atol=1e-5, err_msg=plan.name)
    pred = Predictor(m, device="cpu", verify=False)  # the copy leaves saved_model/ out
    np.testing.assert_allclose(pred.predict_onehot(x)["logit"], ref, atol=1e-5)
    codes = np.where(x.any(-1), x.argmax(-1), 4).astype(np.uint8)
    np.testing.assert_allclose(pred.predict_codes(codes)["logit"], ref, atol=1e-5)


def test_the_choice_is_cached_and_reused(trained, tmp_path):
    m = _copy(trained, tmp_path)
    meta = read_metadata(m)
    plan, info = cal.plan_for(m, meta, threads=None, mode="auto", timer=_prefer("model.onnx"))
    assert info["source"] == "calibrated" and info["path"].startswith(str(m / "calibration"))
    assert json.loads(open(info["path"]).read())["plan"]["name"] == plan.name

    def no_timing(plan, call):
        raise AssertionError("calibrated again instead of using the cache")

    again, info2 = cal.plan_for(m, meta, threads=None, mode="auto", timer=no_timing)
    assert info2["source"] == "cache" and again == plan
    # another thread count is another machine setting: calibrated anew, in its own file
    other, info3 = cal.plan_for(m, meta, threads=1, mode="auto", timer=_prefer("model.onnx"))
    assert info3["source"] == "calibrated" and info3["path"] != info["path"]
    assert other.threads in (0, 1) and (not other.parallel)
    # "off": ONNX Runtime's defaults, nothing timed or written
    off, info4 = cal.plan_for(m, meta, threads=None, mode="off", timer=no_timing)
    assert info4["source"] == "off" and off == cal.BASELINE


def test_read_only_model_folder_caches_in_the_user_folder(trained, tmp_path, monkeypatch):
    m = _copy(trained, tmp_path)
    meta = read_metadata(m)
    monkeypatch.setenv("BINDCNN_CACHE_DIR", str(tmp_path / "usercache"))
    real = cache.writable
    monkeypatch.setattr(cache, "writable", lambda folder: False if folder == m / "calibration" else real(folder))
    _, info = cal.plan_for(m, meta, mode="auto", timer=_prefer("model.onnx"))
    assert info["path"].startswith(str(tmp_path / "usercache" / "calibration"))
    assert not (m / "calibration").exists() or not any((m / "calibration").glob("*.json"))
    _, info2 = cal.plan_for(m, meta, mode="auto", timer=_prefer("model.onnx"))
    assert info2["source"] == "cache" and info2["path"] == info["path"]


def test_a_cache_record_for_other_files_is_ignored(trained, tmp_path):
    m = _copy(trained, tmp_path)
    meta = read_metadata(m)
    _, info = cal.plan_for(m, meta, mode="auto", timer=_prefer("model.onnx"))
    changed = dict(meta, files={**meta["files"], "model.onnx": "0" * 64})
    assert cache.load(cache.cache_path(m, cache.cache_key(m, changed, 0)), cache.cache_key(m, changed, 0)) is None
    assert cache.load(cache.cache_path(m, cache.cache_key(m, meta, 0)), cache.cache_key(m, meta, 0)) is not None


@pytest.mark.parametrize("n", [1, 8, 9, 257, 1000])
def test_parallel_and_chunked_runs_keep_the_order(trained, n):
    meta = trained["meta"]
    x = cal.parity_inputs(meta["sequence_length"], n)
    ref = Runner(trained["dir"], cal.BASELINE, meta["input_name"]).run(x)[1]
    for plan in (Plan(options="nospin", threads=2, parallel=True, chunk=64, small="single"),
                 Plan(options="spin", threads=2, chunk=100, small="ort-default")):
        np.testing.assert_allclose(Runner(trained["dir"], plan, meta["input_name"]).run(x)[1], ref, atol=1e-5)


@pytest.mark.parametrize("n", [5, 9, 1000])
def test_codes_started_then_finished_equal_the_one_hot_run(trained, n):
    """Runner.start_codes returns with the pool's threads at work; finish() (the caller joining in) gives what
    run() gives on the same sequences as one-hot."""
    from serving.dna import codes_to_onehot

    meta = trained["meta"]
    codes = np.random.default_rng(n).integers(0, 5, (n, meta["sequence_length"]), dtype=np.uint8)
    runner = Runner(trained["dir"], Plan(options="nospin", threads=2, parallel=True, chunk=64, small="single"),
                    meta["input_name"])
    job = runner.start_codes(codes)
    prob, logit = job.finish()
    ref = runner.run(codes_to_onehot(codes))
    np.testing.assert_array_equal(logit, ref[1])
    np.testing.assert_array_equal(prob, ref[0])


def test_a_failing_part_stops_the_job_and_is_raised_by_finish():
    """serving.runner.Job: every part runs once, on the pool's threads and the caller's; an error in one part stops
    the others at their next part, finish() raises it and returns only when no thread still writes."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from serving.runner import Job

    done, threads = [], set()

    def one(a, b):
        time.sleep(0.002)
        threads.add(threading.current_thread().name)
        done.append(a)
        return np.arange(a, b, dtype=np.float32), -np.arange(a, b, dtype=np.float32)

    pool = ThreadPoolExecutor(1, thread_name_prefix="helper")
    parts = [(i, i + 10) for i in range(0, 200, 10)]
    job = Job(200, parts, one)
    job.helpers = [pool.submit(job.work)]
    prob, logit = job.finish()
    assert sorted(done) == [a for a, _ in parts] and len(threads) == 2  # each part once; both threads worked
    np.testing.assert_array_equal(prob, np.arange(200)) and np.testing.assert_array_equal(logit, -np.arange(200))

    def failing(a, b):
        if a == 50:
            raise ValueError("part 50")
        return one(a, b)

    done.clear()
    job = Job(200, parts, failing)
    job.helpers = [pool.submit(job.work)]
    with pytest.raises(ValueError, match="part 50"):
        job.finish()
    assert job.helpers[0].done() and len(done) < len(parts) - 1  # stopped early, nothing running after finish
    pool.shutdown()


def test_model_endpoint_reports_the_choice(server):
    import httpx

    info = httpx.get(f"{server.url}/model", timeout=60).json()
    pred = info["predictor"]
    assert pred["plan"]["name"] and pred["plan"]["graph"] in {"model.onnx", *(info["model"].get("onnx_variants") or {})}
    assert pred["calibration"]["source"] in {"calibrated", "cache"}
    assert pred["calibration"]["key"]["cpu"] and pred["calibration"]["key"]["onnxruntime"]


def test_probe_batch_is_cached_and_a_damaged_cache_cannot_refuse_a_good_model(trained, tmp_path):
    """The fingerprint's probe batch comes from the cache folder (no numpy.random at start); a file of the right
    shape but wrong contents makes the check retry with a fresh batch, which passes and is saved again."""
    import subprocess
    import sys

    from serving.artifact import probe_inputs
    from serving.predictor import Predictor

    model = _copy(trained, tmp_path)
    Predictor(model, device="cpu", verify=False)
    saved = list((model / cache.FOLDER).glob("probes-*.npy"))
    assert len(saved) == 1 and np.array_equal(np.load(saved[0]), probe_inputs(read_metadata(model)["sequence_length"]))
    code = ("import sys\nfrom serving.predictor import Predictor\n"
            f"Predictor({str(model)!r}, device='cpu', verify=False)\nprint('numpy.random' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "False", res.stderr
    np.save(saved[0], np.zeros_like(np.load(saved[0])))
    Predictor(model, device="cpu", verify=False)  # refused before the retry: the zeros give other logits
    assert np.array_equal(np.load(saved[0]), probe_inputs(read_metadata(model)["sequence_length"]))
