"""Artifact integrity: a model whose files do not match metadata.json, whose metadata is missing or invalid, or
whose ONNX and SavedModel disagree is refused (also by `bentoml serve`); Ctrl-C during training leaves nothing."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from serving.artifact import (ArtifactError, check_fingerprint, probe_inputs, read_metadata, verify_model_dir,
                              write_metadata)
from serving.service.launch import Server


def _copy(trained, tmp_path, name="m") -> Path:
    dst = tmp_path / name
    shutil.copytree(trained["dir"], dst)
    return dst


def _meta(path: Path) -> dict:
    return json.loads((path / "metadata.json").read_text())


def _rewrite(path: Path, **changes) -> None:
    meta = _meta(path)
    meta.update(changes)
    (path / "metadata.json").write_text(json.dumps(meta))


# ------------------------------------------------------------------------------ checksums, metadata
def test_every_listed_file_is_checked(trained, tmp_path):
    m = _copy(trained, tmp_path)
    variables = sorted(f for f in _meta(m)["files"] if f.startswith("saved_model/variables/"))[0]
    with open(m / variables, "r+b") as fh:
        fh.seek(0)
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0xFF]))
    with pytest.raises(ArtifactError, match=f"{variables} does not match its sha256.*Re-export"):
        verify_model_dir(m)
    shutil.rmtree(m / "saved_model")
    with pytest.raises(ArtifactError, match="saved_model/.* is listed in metadata.json but missing"):
        verify_model_dir(m)


def test_unlisted_required_part_is_refused(trained, tmp_path):
    m = _copy(trained, tmp_path)
    meta = _meta(m)
    meta["files"] = {k: v for k, v in meta["files"].items() if k != "model.onnx"}
    (m / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="metadata lists no model.onnx"):
        verify_model_dir(m)


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    (b"\xff\xfe\x00garbage", "is not valid JSON"),
    ("[1, 2, 3]", "must hold a JSON object"),
    ("{}", "lacks name, version, format_version"),
])
def test_invalid_metadata_file(trained, tmp_path, content, message):
    m = _copy(trained, tmp_path)
    path = m / "metadata.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ArtifactError, match=message):
        read_metadata(m)


@pytest.mark.parametrize("changes, message", [
    ({"format_version": 99}, "format_version 99, this code reads 1"),
    ({"sequence_length": -5}, "sequence_length must be a positive integer"),
    ({"sequence_length": "200"}, "sequence_length must be a positive integer"),
    ({"alphabet": "ACGU"}, "alphabet must be the 4 letters ACGT"),
    ({"files": {}}, "'files' must map file names"),
    ({"files": ["model.onnx"]}, "'files' must map file names"),
])
def test_invalid_metadata_values(trained, tmp_path, changes, message):
    m = _copy(trained, tmp_path)
    _rewrite(m, **changes)
    with pytest.raises(ArtifactError, match=message):
        verify_model_dir(m)


def test_missing_model_dir_and_metadata(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist.*bindcnn train"):
        verify_model_dir(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="metadata.json is missing.*not an exported model"):
        verify_model_dir(tmp_path / "empty")


# -------------------------------------------------------------------------- ONNX vs SavedModel
def _other_weights(trained):
    """The trained Keras model with every weight shifted: same architecture, different function."""
    import keras

    model = keras.models.load_model(trained["dir"] / "model.keras")
    other = keras.models.clone_model(model)
    other.set_weights([w + 0.05 for w in model.get_weights()])
    return other


def _swap(trained, tmp_path, part: str, name: str) -> Path:
    """A copy of the model whose `part` (model.onnx or saved_model) comes from other weights, with
    metadata.json's checksums rewritten to match (what a careless hand re-export would produce)."""
    from training.export import write_onnx, write_saved_model

    m = _copy(trained, tmp_path, name)
    other = _other_weights(trained)
    if part == "model.onnx":
        write_onnx(other, m / "model.onnx")
    else:
        shutil.rmtree(m / "saved_model")
        write_saved_model(other, m / "saved_model")
    meta = _meta(m)
    meta.pop("files")
    write_metadata(m, dict(meta, name=name))
    verify_model_dir(m, need=("model.onnx", "saved_model"))  # the checksums alone no longer catch it
    return m


def test_export_records_a_fingerprint_both_runtimes_reproduce(trained):
    from serving.predictor import Predictor
    from serving.attribution import load_logits_fn

    meta = trained["meta"]
    fp = meta["fingerprint"]["logit"]
    assert len(fp) == len(probe_inputs(meta["sequence_length"])) and np.std(fp) > 0
    assert check_fingerprint(meta, Predictor(trained["dir"], device="cpu")._run(
        probe_inputs(meta["sequence_length"]))[1], "onnx") <= 1e-5
    tf_logit = np.asarray(load_logits_fn(trained["dir"])(probe_inputs(meta["sequence_length"])))
    assert check_fingerprint(meta, tf_logit, "tf") <= 1e-5


def test_onnx_from_other_weights_is_refused_by_the_predictor(trained, tmp_path):
    from serving.predictor import Predictor

    m = _swap(trained, tmp_path, "model.onnx", "swapped-onnx")
    with pytest.raises(ArtifactError, match=r"the ONNX model \(model.onnx\) disagrees with the SavedModel logits"
                                            r".*not come from the same weights"):
        Predictor(m, device="cpu")


def test_model_without_fingerprint_is_refused(trained, tmp_path):
    from serving.predictor import Predictor

    m = _copy(trained, tmp_path)
    meta = _meta(m)
    meta.pop("fingerprint")
    meta.pop("files")
    write_metadata(m, meta)
    with pytest.raises(ArtifactError, match="has no fingerprint.*Re-export"):
        Predictor(m, device="cpu")
    bad = dict(meta, fingerprint={"logit": [float("nan")] * 16})
    with pytest.raises(ArtifactError, match="disagrees"):
        check_fingerprint(bad, np.zeros(16), "x")


def _refuses_to_start(srv: Server, message: str, timeout: float = 150) -> str:
    """Start srv and wait until its log shows `message`; assert it never became ready; stop it.

    A predictor (entry worker) that fails makes `bentoml serve` exit; an explainer (dependency worker)
    that fails is restarted by BentoML again and again while /readyz stays unready, so the log is watched
    instead of waiting for an exit. Returns the log."""
    outcome: list = []

    def start():
        try:
            srv.start(timeout=timeout)
            outcome.append("ready")
        except RuntimeError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while thread.is_alive() and message not in srv.output() and time.monotonic() < deadline:
        time.sleep(0.3)
    ready = "ready" in outcome
    if not ready and thread.is_alive():
        import httpx

        try:
            ready = httpx.get(f"{srv.url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            pass
    import psutil

    try:  # BentoML's workers, to be sure none outlives the server (a crash-looping one may escape killpg)
        workers = psutil.Process(srv.proc.pid).children(recursive=True) if srv.proc else []
    except psutil.NoSuchProcess:
        workers = []
    srv.stop()
    thread.join(30)
    for proc in workers:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    log = srv.output()
    assert not ready, "the server became ready with a disagreeing model"
    assert message in log, log[-3000:]
    return log


@pytest.mark.parametrize("part", ["model.onnx", "saved_model"])
def test_bentoml_serve_refuses_disagreeing_model(trained, tmp_path, part):
    """The real server never becomes ready, and says why, when either half disagrees."""
    from serving.store import register

    tag = register(_swap(trained, tmp_path, part, f"swapped-{part.replace('.', '-').replace('_', '-')}"))
    source = "the ONNX model (model.onnx)" if part == "model.onnx" else "the TensorFlow SavedModel (saved_model/)"
    log = _refuses_to_start(Server(env={"BINDCNN_MODEL": tag}), f"{source} disagrees with the SavedModel logits")
    assert "not come from the same weights. Re-export it with: bindcnn train" in log


# ------------------------------------------------------------------------------ Ctrl-C in training
def _train(args, models: Path, interrupt_at: str | None = None, timeout=300) -> tuple[int, str]:
    """Run `python -m training train ...`; interrupt_at names a training.hooks point where the process sends
    itself SIGINT (as Ctrl-C would), so where the interrupt lands does not depend on the machine's speed.
    Returns (exit code, stderr)."""
    from training.hooks import INTERRUPT_ENV

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", INTERRUPT_ENV: interrupt_at or ""}
    # SIGINT back to its default in the child: a test run started in the background by a shell without job
    # control inherits SIGINT ignored, and Python then never turns it into KeyboardInterrupt (seen: `bash -c
    # "time (make test)" &`).
    proc = subprocess.run([sys.executable, "-m", "training", "train", *args, "--models", str(models)],
                          stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, timeout=timeout,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc.returncode, proc.stderr


def _leftovers(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir()) if models.exists() else []


def test_ctrl_c_leaves_no_partial_export_and_can_rerun(tmp_path):
    data = tmp_path / "small.h5"
    subprocess.run([sys.executable, "-m", "training", "synthetic", "--out", str(data), "--n", "2000"],
                   check=True, capture_output=True)
    models = tmp_path / "models"
    args = ["--data", str(data), "--name", "intr", "--epochs", "3", "--no-register"]

    # 1. During training (after the first epoch): exit 130, nothing in models/.
    rc, err = _train(args, models, "epoch-1")
    assert rc == 130, err
    assert "epoch   1/" in err and "epoch   2/" not in err  # it stopped where it was interrupted
    assert "interrupted" in err and _leftovers(models) == []

    # 2. It can be re-run to the end.
    rc, err = _train(args, models)
    assert rc == 0, err
    first = verify_model_dir(models / "intr", need=("model.onnx", "saved_model"))

    # 3. Interrupted in the middle of a re-export (its staging folder exists): the previous export stays
    # whole, and no staging folder is left behind.
    rc, err = _train(args, models, "export-staging")
    assert rc == 130, err
    assert "exporting SavedModel + ONNX" in err  # interrupted inside the export, not before it
    assert _leftovers(models) == ["intr"]
    assert verify_model_dir(models / "intr", need=("model.onnx", "saved_model"))["version"] == first["version"]
