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
from training.evaluate import auroc, metrics, plot_curves, plot_history

DEFAULT_DATA = Path(f"data/{DEFAULT_MODEL_NAME}_synthetic.h5")
PARITY_SAMPLES = 2048
CONVERTER_WORDS = {"direct": "written directly from the Keras weights in ONNX Runtime's fastest CPU layout "
                             "(training/onnx_graph.py)", "tf2onnx": "converted by tf2onnx"}


def motif_data_path(matrix_name: str) -> Path:
    """Where `train --motif` keeps the built-in set of a matrix: data/MA0138.3_synthetic.h5."""
    return Path(f"data/{matrix_name.partition(' ')[0]}_synthetic.h5")


def default_dataset(path: Path | None = None, n: int = DEFAULT_SYNTHETIC_N, seed: int = 0,
                    matrix: tuple[str, np.ndarray] | None = None) -> Path:
    """The built-in synthetic dataset on disk (written once, reused after; rewritten when the file was made
    by another version of the generator, as its description attribute says). matrix: (name, counts) of another
    JASPAR matrix to plant (training.datasets.jaspar.fetch_jaspar); path defaults to DEFAULT_DATA (CTCF) or
    motif_data_path(name)."""
    import h5py

    from training.datasets.synthetic import synthetic_description

    if path is None:
        path = DEFAULT_DATA if matrix is None else motif_data_path(matrix[0])
    wanted = synthetic_description(n, 200, seed, matrix_name=None if matrix is None else matrix[0])
    if path.exists():
        with h5py.File(path, "r") as fh:
            found = str(fh.attrs.get("description", ""))
        if found == wanted:
            return path
        say(f"{path} holds another version of the built-in dataset ({found!r}); rewriting it")
    say(f"writing the built-in synthetic dataset (n={n}, seed={seed}"
        + ("" if matrix is None else f", {matrix[0]} planted") + f") to {path}")
    write_synthetic(path, n=n, seed=seed, matrix=matrix)
    return path


def baseline_check(ds: Dataset, test_prob: np.ndarray) -> dict[str, Any]:
    """The PWM baseline on the test split beside the CNN's AUROC (metadata "baseline"); a model that does not
    beat it gets a "warning" (a failed export check: printed, recorded, the export itself stands)."""
    from training.baseline import pwm_baseline, verdict

    base = pwm_baseline(ds.x["test"], ds.y["test"], matrix_text=ds.matrix)
    cnn = round(auroc(ds.y["test"], test_prob), 6)
    record = {"split": "test", "pwm": base, "cnn_auroc": cnn, **verdict(cnn, base)}
    if not record["beats_baseline"]:
        record["warning"] = (f"failed export check: the CNN's test AUROC {cnn:.4f} does not beat the PWM baseline's "
                             f"{base['auroc']:.4f} ({base['score']}) on the same split")
    return record


def report_baseline(record: dict[str, Any]) -> None:
    """One line on stderr: the baseline beside the CNN, or the failed-check warning."""
    b = record["pwm"]
    say(f"PWM baseline ({b['matrix']}, best log-odds match): AUROC {b['auroc']:.4f}  AUPR {b['aupr']:.4f}; "
        f"CNN - baseline AUROC {record['auroc_margin']:+.4f}")
    if "warning" in record:
        say(f"WARNING: {record['warning']}")


def dataset_factor(ds: Dataset) -> dict[str, Any] | None:
    """metadata "factor": {"name", "matrix_id", "matrix"} of the matrix a built-in set planted (recorded in the
    file, or the default CTCF set's MA0139.1); None for data that names no matrix (FASTA, peaks, downloads)."""
    from training.datasets.jaspar import load_jaspar, parse_jaspar

    if ds.matrix:
        name, counts = parse_jaspar(ds.matrix)
    elif ds.description.startswith("built-in synthetic CTCF set"):
        name, counts = load_jaspar()
    else:
        return None
    matrix_id, _, factor = name.partition(" ")
    return {"name": factor or matrix_id, "matrix_id": matrix_id, "matrix": counts.T.tolist()}


def strand_average_prob(model, x: np.ndarray) -> np.ndarray:
    """Probability from the mean of both strands' logits: x (N, L, 4) -> (N,) (what `--rc` serves)."""
    from serving.dna import average_strands, reverse_complement
    from training.model import logit_model

    logit = logit_model(model)
    z = logit.predict(x, batch_size=1024, verbose=0).reshape(-1)
    z_rc = logit.predict(np.ascontiguousarray(reverse_complement(x)), batch_size=1024, verbose=0).reshape(-1)
    return average_strands(z, z_rc)["probability"]


def training_metadata(ds: Dataset, fit_result, test_prob: np.ndarray, valid_prob: np.ndarray,
                      source: str) -> dict[str, Any]:
    h = fit_result.history
    return {
        "data": {**describe(ds), "source": source},
        "factor": dataset_factor(ds),
        "training": {
            **fit_result.settings,
            "epochs_run": fit_result.epochs_run,
            "best_epoch": fit_result.best_epoch,
            "stopped_early": fit_result.stopped_early,
            "seconds": round(fit_result.seconds, 1),
            "history": {k: [round(v, 5) for v in vals] for k, vals in h.items()},
        },
        "metrics": {"test": metrics(ds.y["test"], test_prob), "valid": metrics(ds.y["valid"], valid_prob),
                    "test_strand_average": metrics(ds.y["test"], strand_average_prob(fit_result.model, ds.x["test"]))},
        "baseline": baseline_check(ds, test_prob),
    }


def train_and_export(data: Path | None, name: str, models_root: Path = Path("models"), epochs: int = 100,
                     notebook_early_stopping: bool = False, seed: int = 0, patience: int = 5,
                     register: bool = True, verbose: bool = True, onnx_converter: str = "direct",
                     rc_augment: bool = False, matrix: tuple[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Train on `data` (None: the built-in synthetic set, planted with `matrix` (name, counts) when given),
    export models_root/name, register it. rc_augment: train on reverse complements too. Returns the metadata."""
    from serving.store import check_name, register as register_model
    from training.export import cleanup_stale, export
    from training.fit import fit

    check_name(name)
    source = str(data or default_dataset(matrix=matrix))
    ds = load_h5(source)
    say(f"data: {source}  train {ds.sizes()['train']}, valid {ds.sizes()['valid']}, test {ds.sizes()['test']}"
        f"  length {ds.length}")
    say(f"training up to {epochs} epochs (early stopping: "
        f"{'notebook: loss, patience ' + str(patience) if notebook_early_stopping else 'val AUROC, patience ' + str(patience) + ', best weights restored'})")
    if rc_augment:
        say("--rc-augment: every epoch also trains on the reverse complement of each training sequence")
    result = fit(ds.x["train"], ds.y["train"], ds.x["valid"], ds.y["valid"], epochs=epochs, patience=patience,
                 notebook_early_stopping=notebook_early_stopping, seed=seed, verbose=verbose, rc_augment=rc_augment)
    say(f"stopped after {result.epochs_run} epochs ({result.seconds:.0f} s); best epoch {result.best_epoch}")
    test_prob = result.model.predict(ds.x["test"], batch_size=1024, verbose=0).reshape(-1)
    valid_prob = result.model.predict(ds.x["valid"], batch_size=1024, verbose=0).reshape(-1)
    meta = training_metadata(ds, result, test_prob, valid_prob, source)
    t = meta["metrics"]["test"]
    say(f"test: accuracy {t['accuracy']:.4f}  AUROC {t['auroc']:.4f}  AUPR {t['aupr']:.4f}  (n={t['n']}); "
        f"both strands averaged: AUROC {meta['metrics']['test_strand_average']['auroc']:.4f}")
    report_baseline(meta["baseline"])

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
    say(f"model:    {out_dir}/ (saved_model/, model.onnx, model.keras, metadata.json"
        + (", scan.onnx, layers.npz" if "scan_graph" in meta else "") + ")")
    say(f"plots:    {out_dir}/history.png, {out_dir}/roc_pr.png")
    return meta
