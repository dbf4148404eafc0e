"""training.fit / export / pipeline: learning, early stopping, verified export, registration."""
import json
import os
import shutil

import numpy as np
import pytest

from serving.artifact import ArtifactError, verify_model_dir


def test_model_learns_and_metrics_are_recorded(trained):
    meta = trained["meta"]
    test = meta["metrics"]["test"]
    # 2,800 training sequences of the synthetic set: chance is 0.5; a model that learned the motif gets >0.85
    assert test["auroc"] > 0.85 and test["aupr"] > 0.8 and test["accuracy"] > 0.75
    run = meta["training"]
    assert run["best_epoch"] == int(np.argmax(run["history"]["val_auroc"])) + 1
    if run["stopped_early"]:  # stopped `patience` epochs after the best one, whose weights were kept
        assert run["epochs_run"] == run["best_epoch"] + run["early_stopping"]["patience"]
        kept = run["history"]["val_auroc"][run["best_epoch"] - 1]
        assert abs(meta["metrics"]["valid"]["auroc"] - kept) < 0.005  # Keras' AUC is binned: ~1e-3
    assert meta["parameters"] == 14_265 and meta["sequence_length"] == 200 and meta["alphabet"] == "ACGT"
    assert set(meta["files"]) >= {"model.onnx", "model.keras", "history.png", "roc_pr.png",
                                  "saved_model/saved_model.pb"}
    assert meta["packages"]["tensorflow"] and meta["data"]["sizes"]["train"] == 2800


def test_early_stopping_stops_and_restores_best(synthetic_h5):
    from training.datasets import load_h5
    from training.fit import fit

    ds = load_h5(synthetic_h5)
    r = fit(ds.x["train"][:600], ds.y["train"][:600], ds.x["valid"], ds.y["valid"], epochs=60, patience=1,
            seed=1, verbose=False)
    assert r.stopped_early and r.epochs_run < 60
    assert r.best_epoch == int(np.argmax(r.history["val_auroc"])) + 1
    assert r.epochs_run == r.best_epoch + 1  # patience 1: one epoch without improvement
    # the model returned holds the best epoch's weights: its validation AUROC is that epoch's
    assert abs(_valid_auroc(r.model, ds) - r.history["val_auroc"][r.best_epoch - 1]) < 0.005
    nb = fit(ds.x["train"][:600], ds.y["train"][:600], ds.x["valid"], ds.y["valid"], epochs=3,
             notebook_early_stopping=True, seed=1, verbose=False)
    assert nb.settings["early_stopping"]["monitor"] == "loss" and nb.settings["early_stopping"]["patience"] == 5
    # the notebook's EarlyStopping keeps the last weights, not the best: the model is the last epoch's
    assert nb.best_epoch == nb.epochs_run == 3
    assert abs(_valid_auroc(nb.model, ds) - nb.history["val_auroc"][-1]) < 0.005


def _valid_auroc(model, ds) -> float:
    from training.evaluate import auroc

    return auroc(ds.y["valid"], model.predict(ds.x["valid"], batch_size=1024, verbose=0))


def test_same_seed_same_model(synthetic_h5):
    from training.datasets import load_h5
    from training.fit import fit

    ds = load_h5(synthetic_h5)
    args = (ds.x["train"][:300], ds.y["train"][:300], ds.x["valid"][:100], ds.y["valid"][:100])
    a = fit(*args, epochs=2, seed=5, verbose=False).model.predict(ds.x["test"][:50], verbose=0)
    b = fit(*args, epochs=2, seed=5, verbose=False).model.predict(ds.x["test"][:50], verbose=0)
    np.testing.assert_array_equal(a, b)


def test_exported_artifacts_agree(trained):
    import onnxruntime as ort
    import tensorflow as tf

    from training.datasets import load_h5

    d = trained["dir"]
    x = load_h5(trained["data"]).x["test"][:300]
    reloaded = tf.saved_model.load(str(d / "saved_model"))
    sess = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["dna"]
    assert sorted(o.name for o in sess.get_outputs()) == ["logit", "prob"]
    assert sess.get_inputs()[0].shape == ["batch", 200, 4]
    prob, logit = sess.run(["prob", "logit"], {"dna": x})
    np.testing.assert_allclose(prob, reloaded.serve(x).numpy(), atol=1e-5)
    np.testing.assert_allclose(logit, reloaded.logits(x).numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-logit)), atol=1e-6)
    parity = trained["meta"]["parity"]
    assert parity["max_abs_prob_diff"] <= 1e-5 and parity["n"] == 800


def test_tampered_file_is_detected(trained, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(trained["dir"], copy)
    assert verify_model_dir(copy)["name"] == "testctcf"
    with open(copy / "model.onnx", "r+b") as fh:
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ArtifactError, match="model.onnx does not match its sha256"):
        verify_model_dir(copy)
    os.remove(copy / "metadata.json")
    with pytest.raises(ArtifactError, match="metadata.json is missing"):
        verify_model_dir(copy)


def test_parity_failure_stops_export(trained, tmp_path, monkeypatch):
    """An export whose ONNX disagrees with TensorFlow fails and leaves nothing in models/."""
    import keras

    import training.export as export_mod
    from training.datasets import load_h5

    model = keras.models.load_model(trained["dir"] / "model.keras")
    real_write_onnx = export_mod.write_onnx

    def write_other_onnx(m, path, **kwargs):  # ONNX from different weights
        other = keras.models.clone_model(m)
        other.set_weights([w + 0.05 for w in m.get_weights()])
        return real_write_onnx(other, path, **kwargs)

    monkeypatch.setattr(export_mod, "write_onnx", write_other_onnx)
    x = load_h5(trained["data"]).x["test"][:200]
    with pytest.raises(export_mod.ParityError, match="disagree"):
        export_mod.export(model, tmp_path / "bad", "bad", x, {})
    assert list(tmp_path.iterdir()) == []


def test_reexport_replaces_atomically_and_registers(trained, tmp_path):
    import bentoml

    from serving.store import register, resolve
    from training.cli import main

    copy = tmp_path / "testctcf"
    shutil.copytree(trained["dir"], copy)
    old = json.loads((copy / "metadata.json").read_text())
    assert main(["export", "--model", str(copy), "--data", str(trained["data"]), "--onnx-converter", "tf2onnx"]) == 0
    new = json.loads((copy / "metadata.json").read_text())
    assert old["onnx_converter"] == "direct" and new["onnx_converter"] == "tf2onnx"
    assert new["parity"]["max_abs_prob_diff"] <= 1e-5  # the tf2onnx graph passes the same check
    assert new["version"] != old["version"] and new["metrics"] == old["metrics"]
    assert [p.name for p in tmp_path.iterdir()] == ["testctcf"]  # no staging or backup left
    tag = f"testctcf:{new['version']}"
    assert bentoml.models.get(tag).tag.version == new["version"]
    assert register(copy) == tag  # idempotent
    assert verify_model_dir(resolve(tag))["version"] == new["version"]
    with pytest.raises(ArtifactError, match="bindcnn train --name nosuch"):
        resolve("nosuch:latest")
