"""The `train` command's whole job: data -> fit -> evaluate -> export (verified) -> register."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from serving.console import say
from serving.store import DEFAULT_MODEL_NAME
from training.datasets import Dataset, describe, load_h5
from training.datasets.synthetic import DEFAULT_SYNTHETIC_N, write_synthetic
from training.evaluate import metrics, plot_curves, plot_history

DEFAULT_DATA = Path(f"data/{DEFAULT_MODEL_NAME}_synthetic.h5")
PARITY_SAMPLES = 2048
CONVERTER_WORDS = {"direct": "written directly from the Keras weights in ONNX Runtime's fastest CPU layout "
                             "(training/onnx_graph.py)", "tf2onnx": "converted by tf2onnx"}


def default_dataset(path: Path = DEFAULT_DATA, n: int = DEFAULT_SYNTHETIC_N, seed: int = 0) -> Path:
    """The built-in synthetic dataset on disk (written once, reused after)."""
    if not path.exists():
        say(f"writing the built-in synthetic dataset (n={n}, seed={seed}) to {path}")
        write_synthetic(path, n=n, seed=seed)
    return path


def training_metadata(ds: Dataset, fit_result, test_prob: np.ndarray, valid_prob: np.ndarray,
                      source: str) -> dict[str, Any]:
    h = fit_result.history
    return {
        "data": {**describe(ds), "source": source},
        "training": {
            **fit_result.settings,
            "epochs_run": fit_result.epochs_run,
            "best_epoch": fit_result.best_epoch,
            "stopped_early": fit_result.stopped_early,
            "seconds": round(fit_result.seconds, 1),
            "history": {k: [round(v, 5) for v in vals] for k, vals in h.items()},
        },
        "metrics": {"test": metrics(ds.y["test"], test_prob), "valid": metrics(ds.y["valid"], valid_prob)},
    }


def train_and_export(data: Path | None, name: str, models_root: Path = Path("models"), epochs: int = 100,
                     notebook_early_stopping: bool = False, seed: int = 0, patience: int = 5,
                     register: bool = True, verbose: bool = True, onnx_converter: str = "direct") -> dict[str, Any]:
    """Train on `data` (None: the built-in synthetic set), export models_root/name, register it.
    Returns the metadata written."""
    from serving.store import check_name, register as register_model
    from training.export import cleanup_stale, export
    from training.fit import fit

    check_name(name)
    source = str(data or default_dataset())
    ds = load_h5(source)
    say(f"data: {source}  train {ds.sizes()['train']}, valid {ds.sizes()['valid']}, test {ds.sizes()['test']}"
        f"  length {ds.length}")
    say(f"training up to {epochs} epochs (early stopping: "
        f"{'notebook: loss, patience ' + str(patience) if notebook_early_stopping else 'val AUROC, patience ' + str(patience) + ', best weights restored'})")
    result = fit(ds.x["train"], ds.y["train"], ds.x["valid"], ds.y["valid"], epochs=epochs, patience=patience,
                 notebook_early_stopping=notebook_early_stopping, seed=seed, verbose=verbose)
    say(f"stopped after {result.epochs_run} epochs ({result.seconds:.0f} s); best epoch {result.best_epoch}")
    test_prob = result.model.predict(ds.x["test"], batch_size=1024, verbose=0).reshape(-1)
    valid_prob = result.model.predict(ds.x["valid"], batch_size=1024, verbose=0).reshape(-1)
    meta = training_metadata(ds, result, test_prob, valid_prob, source)
    t = meta["metrics"]["test"]
    say(f"test: accuracy {t['accuracy']:.4f}  AUROC {t['auroc']:.4f}  AUPR {t['aupr']:.4f}  (n={t['n']})")

    out_dir = Path(models_root) / name
    cleanup_stale(models_root)
    with tempfile.TemporaryDirectory() as tmp:
        plots = {"history.png": plot_history(result.history, Path(tmp) / "history.png"),
                 "roc_pr.png": plot_curves(ds.y["test"], test_prob, Path(tmp) / "roc_pr.png")}
        check = ds.x["test"][:PARITY_SAMPLES]
        say(f"exporting SavedModel + ONNX to {out_dir} and checking parity on {len(check)} test sequences")
        meta = export(result.model, out_dir, name, check, meta, extra_files=plots, onnx_converter=onnx_converter)
    p = meta["parity"]
    say(f"ONNX graph: {CONVERTER_WORDS.get(meta['onnx_converter'], meta['onnx_converter'])}")
    say(f"parity ONNX vs TensorFlow: max |dprob| {p['max_abs_prob_diff']:.2e}, max |dlogit| "
        f"{p['max_abs_logit_diff']:.2e} (tolerance {p['tolerance']:.0e})")
    if register:
        tag = register_model(out_dir)
        meta["bentoml_tag"] = tag
        say(f"registered in the BentoML model store as {tag}")
    say(f"model:    {out_dir}/ (saved_model/, model.onnx, model.keras, metadata.json)")
    say(f"plots:    {out_dir}/history.png, {out_dir}/roc_pr.png")
    return meta
