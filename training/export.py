"""Export one set of trained weights as a TensorFlow SavedModel (endpoints `serve` -> probability,
`logits` -> pre-sigmoid output) and an ONNX model (outputs `prob`, `logit`), verify that they agree,
add the shared-computation engines' files (scan.onnx, layers.npz; each checked against model.onnx) and the null of
substitution effects for variant p-values (null_effects.npy), and write models/<name>/ atomically with metadata.json
and checksums."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from serving.artifact import (FINGERPRINT_SEED, ONNX_FILE, SAVED_MODEL_DIR, ArtifactError, check_fingerprint,
                              probe_inputs, scaled_difference, write_metadata)
from serving.dna import ALPHABET, codes_to_onehot, sigmoid
from serving.versions import TRAINING_PACKAGES, package_versions
from training.hooks import interrupt_point
from training.model import INPUT_NAME, logit_model
from training.null_effects import add_null

KERAS_FILE = "model.keras"  # the trained weights, for re-export and fine-tuning
ONNX_OPSET = 17
ONNX_CONVERTERS = ("direct", "tf2onnx")
PARITY_TOLERANCE = 1e-5


class ParityError(RuntimeError):
    """ONNX Runtime and TensorFlow disagree on the same input."""


def _input_spec(length: int):
    import tensorflow as tf

    return [tf.TensorSpec([None, length, 4], tf.float32, name=INPUT_NAME)]


def write_saved_model(model, path: str | os.PathLike) -> None:
    """SavedModel with endpoints serve(dna) -> (N, 1) probability and logits(dna) -> (N, 1) logit."""
    import keras

    spec = _input_spec(model.input_shape[1])
    logits = logit_model(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda dna: model(dna, training=False), input_signature=spec)
    archive.add_endpoint("logits", lambda dna: logits(dna, training=False), input_signature=spec)
    archive.write_out(str(path), verbose=False)


def write_onnx(model, path: str | os.PathLike, opset: int = ONNX_OPSET, converter: str = "direct") -> str:
    """ONNX graph: input `dna` (batch, L, 4) float32 -> outputs `prob` and `logit`, each (batch, 1).

    converter "direct": models of training.model's shape are written by training.onnx_graph in the layout
    ONNX Runtime runs fastest (~1.5-2x tf2onnx's graph on CPU, see benchmarks/RESULTS.md), any other
    model goes through tf2onnx; "tf2onnx": always tf2onnx. Returns the converter used."""
    from training import onnx_graph

    if converter not in ONNX_CONVERTERS:
        raise ValueError(f"unknown ONNX converter {converter!r}; choose from {', '.join(ONNX_CONVERTERS)}")
    try:
        if converter != "direct":
            raise onnx_graph.Unsupported("tf2onnx asked for")
        proto, used = onnx_graph.build(model, opset), "direct"
    except onnx_graph.Unsupported:
        proto, used = _tf2onnx_graph(model, opset), "tf2onnx"
    proto.doc_string = "bindcnn: DNA one-hot (batch, L, 4) in ACGT order -> CTCF binding prob and logit"
    Path(path).write_bytes(proto.SerializeToString())
    return used


NARROW_BLOCK = 8  # ONNX Runtime's NCHWc block on AVX2
NARROW_FILE = "model.block8.onnx"


def write_engine_files(model, folder: Path, session, x_check: np.ndarray, tolerance: float = PARITY_TOLERANCE
                       ) -> dict[str, Any]:
    """The shared-computation engines' files, from the same weights as model.onnx: layers.npz (serving.layers, for
    incremental substitutions) and scan.onnx (training.scan_graph). Each is checked against model.onnx (`session`)
    window by window, as the predictor scores (ParityError beyond `tolerance`). Returns metadata's 'layers' and
    'scan_graph' entries; {} for a model whose architecture the engines do not know (scored window by window)."""
    import onnxruntime as ort

    from serving import engine, substitutions
    from serving.layers import LAYERS_FILE, Layers
    from training import onnx_graph, scan_graph

    try:
        layers = onnx_graph.layer_weights(model)
    except onnx_graph.Unsupported:
        return {}
    length = layers.length
    layers.save(folder / LAYERS_FILE)
    (folder / engine.SCAN_FILE).write_bytes(scan_graph.build(layers, ONNX_OPSET).SerializeToString())
    # model.onnx pads the filters to whole 16-channel blocks (ONNX Runtime's NCHWc block with AVX-512); a CPU
    # without AVX-512 blocks by 8, where the same weights padded to 8 run ~1.5x faster (serving.predictor picks).
    narrow = onnx_graph.build_from_layers(layers, ONNX_OPSET, channel_block=NARROW_BLOCK)
    (folder / NARROW_FILE).write_bytes(narrow.SerializeToString())

    def per_window(x: np.ndarray) -> np.ndarray:
        return np.concatenate([session.run(["logit"], {INPUT_NAME: np.ascontiguousarray(x[i:i + 4096])})[0]
                               .reshape(-1) for i in range(0, len(x), 4096)])

    # scan.onnx: a long sequence made of held-out sequences end to end with a run of N, every window at stride 1
    long = scan_check_sequence(x_check, length)
    scan = ort.InferenceSession(str(folder / engine.SCAN_FILE), providers=["CPUExecutionProvider"])
    starts = np.arange(len(long) - length + 1, dtype=np.int64)
    got = scan.run(["logit"], {engine.SCAN_INPUTS[0]: long, engine.SCAN_INPUTS[1]: starts})[0]
    windows = np.lib.stride_tricks.sliding_window_view(long, (length, 4))[:, 0]
    scan_parity = agreement(per_window(windows), got, tolerance, f"the scan graph ({engine.SCAN_FILE})")
    # layers.npz: every single-base mutant of a few held-out sequences, incrementally vs model.onnx
    codes = np.where(x_check[:4].max(axis=2) > 0, x_check[:4].argmax(axis=2), 4).astype(np.uint8)
    mutants, _ = substitutions.mutant_logits(Layers.load(folder / LAYERS_FILE), codes)
    each = np.repeat(codes, length * 4, axis=0).reshape(len(codes), length * 4, length)
    rows = np.arange(length * 4)
    each[:, rows, rows // 4] = rows % 4
    expected = per_window(codes_to_onehot(each.reshape(-1, length)))
    layers_parity = agreement(expected, mutants.reshape(-1), tolerance, f"incremental substitutions ({LAYERS_FILE})")
    narrow_session = ort.InferenceSession(str(folder / NARROW_FILE), providers=["CPUExecutionProvider"])
    narrow_parity = agreement(per_window(x_check), np.concatenate([
        narrow_session.run(["logit"], {INPUT_NAME: np.ascontiguousarray(x_check[i:i + 4096])})[0].reshape(-1)
        for i in range(0, len(x_check), 4096)]), tolerance, f"the {NARROW_BLOCK}-channel-block graph ({NARROW_FILE})")
    return {
        "cpu_graphs": {"no_avx512": {"file": NARROW_FILE, "channel_block": NARROW_BLOCK, "parity": narrow_parity,
                                     "use": "model.onnx's weights with the filters padded to whole 8-channel blocks: "
                                            "the predictor runs it on CPUs without AVX-512"}},
        "layers": {"file": LAYERS_FILE, "arrays": "serving/layers.py Layers: conv kernel (K, 4, F), bias (F,), "
                   "dense_w (T*F, D), dense_b, logit_w (D, 1), logit_b, pool, length", "parity": layers_parity},
        "scan_graph": {"file": engine.SCAN_FILE,
                       "inputs": {engine.SCAN_INPUTS[0]: "(bases, 4) float32 one-hot, channels A,C,G,T; N = zeros",
                                  engine.SCAN_INPUTS[1]: f"(windows,) int64 window starts, 0 <= s <= bases - {length}"},
                       "outputs": {engine.SCAN_OUTPUTS[0]: "(windows,) float32 logit of each window",
                                   engine.SCAN_OUTPUTS[1]: "(windows,) float32 probability of each window"},
                       "parity": scan_parity},
    }


def scan_check_sequence(x_check: np.ndarray, length: int, n: int = 48) -> np.ndarray:
    """(bases, 4) float32: the first n held-out sequences end to end, 60 N and 30 random bases between their two
    halves, so that windows straddle sequences, a run of N and both ends."""
    rng = np.random.default_rng(0)
    half = len(x_check[:n]) // 2
    filler = np.vstack([np.zeros((60, 4), np.float32), np.eye(4, dtype=np.float32)[rng.integers(0, 4, 30)]])
    return np.ascontiguousarray(np.vstack([x_check[:half].reshape(-1, 4), filler, x_check[half:n].reshape(-1, 4)]),
                                np.float32)


def agreement(expected: np.ndarray, logit: np.ndarray, tolerance: float, what: str) -> dict[str, Any]:
    """Logits of another computation vs model.onnx's (N,): probabilities compared absolutely, logits relative to
    max(1, |logit|). Raises ParityError beyond tolerance; returns the measured differences."""
    expected, logit = np.asarray(expected, np.float64).reshape(-1), np.asarray(logit, np.float64).reshape(-1)
    report = {"n": int(len(expected)),
              "max_abs_prob_diff": float(np.abs(sigmoid(expected).astype(np.float64) - sigmoid(logit)).max()),
              "max_scaled_logit_diff": float(scaled_difference(logit, expected).max()),
              "reference": "model.onnx, window by window", "tolerance": tolerance}
    if not (report["max_abs_prob_diff"] <= tolerance and report["max_scaled_logit_diff"] <= tolerance):
        raise ParityError(f"{what} disagrees with model.onnx beyond {tolerance}: probability "
                          f"{report['max_abs_prob_diff']:.3g}, logit (scaled) {report['max_scaled_logit_diff']:.3g}")
    return report


def _tf2onnx_graph(model, opset: int):
    """tf2onnx's conversion of the model's (prob, logit) function; batch dimension named `batch`."""
    import tensorflow as tf
    import tf2onnx

    spec = _input_spec(model.input_shape[1])
    logits = logit_model(model)

    @tf.function(input_signature=spec)
    def both(dna):
        z = logits(dna, training=False)
        return {"prob": tf.sigmoid(z), "logit": z}

    proto, _ = tf2onnx.convert.from_function(both, input_signature=spec, opset=opset)
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_param = "batch"
    return proto


def load_runtimes(model_dir: str | os.PathLike):
    """The exported pair as the two sides will run it: (reloaded SavedModel, ONNX Runtime CPU session)."""
    import onnxruntime as ort
    import tensorflow as tf

    model_dir = Path(model_dir)
    reloaded = tf.saved_model.load(str(model_dir / SAVED_MODEL_DIR))
    session = ort.InferenceSession(str(model_dir / ONNX_FILE), providers=["CPUExecutionProvider"])
    return reloaded, session


def check_parity(runtimes, x: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> dict[str, Any]:
    """Run the reloaded SavedModel and the ONNX model (load_runtimes) on x: (N, L, 4) float32.

    Probabilities are compared absolutely; logits relative to max(1, |logit|), since float32
    rounding grows with the logit's size. Raises ParityError beyond `tolerance`; returns the
    measured differences."""
    reloaded, session = runtimes
    tf_prob, tf_logit, ox_prob, ox_logit = [], [], [], []
    for start in range(0, len(x), 4096):
        chunk = np.ascontiguousarray(x[start:start + 4096], np.float32)
        tf_prob.append(reloaded.serve(chunk).numpy().reshape(-1))
        tf_logit.append(reloaded.logits(chunk).numpy().reshape(-1))
        p, z = session.run(["prob", "logit"], {INPUT_NAME: chunk})
        ox_prob.append(p.reshape(-1))
        ox_logit.append(z.reshape(-1))
    tf_prob, tf_logit, ox_prob, ox_logit = map(np.concatenate, (tf_prob, tf_logit, ox_prob, ox_logit))
    logit_diff = np.abs(tf_logit.astype(np.float64) - ox_logit)
    report = {
        "n": int(len(x)),
        "max_abs_prob_diff": float(np.abs(tf_prob.astype(np.float64) - ox_prob).max()),
        "max_abs_logit_diff": float(logit_diff.max()),
        "max_scaled_logit_diff": float(scaled_difference(ox_logit, tf_logit).max()),
        "max_abs_logit": float(np.abs(tf_logit).max()),
        "tolerance": tolerance,
    }
    if report["max_abs_prob_diff"] > tolerance or report["max_scaled_logit_diff"] > tolerance:
        raise ParityError(
            f"ONNX and TensorFlow disagree beyond {tolerance}: probability {report['max_abs_prob_diff']:.3g}, "
            f"logit {report['max_abs_logit_diff']:.3g} (scaled {report['max_scaled_logit_diff']:.3g})"
        )
    return report


def fingerprint(runtimes, length: int) -> dict[str, Any]:
    """The reloaded SavedModel's logits on serving.artifact.probe_inputs(length): (16,) -> metadata
    'fingerprint', which the predictor (ONNX) and the explainer (TF) must reproduce at start-up."""
    reloaded, session = runtimes
    x = probe_inputs(length)
    record = {"probe": f"serving.artifact.probe_inputs(seed {FINGERPRINT_SEED})",
              "logit": [float(v) for v in reloaded.logits(x).numpy().reshape(-1)]}
    try:  # as the predictor will at start-up
        check_fingerprint({"fingerprint": record}, session.run(["logit"], {INPUT_NAME: x})[0], "the ONNX model")
    except ArtifactError as exc:
        raise ParityError(str(exc)) from exc
    return record


def new_version(now: dt.datetime | None = None) -> str:
    """A sortable, store-valid version string, e.g. 20261125-104501-123456."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%d-%H%M%S-%f")


def export(model, out_dir: str | os.PathLike, name: str, x_check: np.ndarray, metadata: dict[str, Any],
           extra_files: dict[str, Path] | None = None, onnx_converter: str = "direct") -> dict[str, Any]:
    """Write models/<name>/ from one keras model: model.keras, saved_model/, model.onnx, extra files
    (plots), metadata.json. The directory appears only once everything is written and ONNX/TF parity
    on x_check (N, L, 4) held-out data passed; an existing export is replaced in one rename.
    Returns the metadata written."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    try:
        interrupt_point("export-staging")
        model.save(staging / KERAS_FILE)
        write_saved_model(model, staging / SAVED_MODEL_DIR)
        converter = write_onnx(model, staging / ONNX_FILE, converter=onnx_converter)
        for rel, src in (extra_files or {}).items():
            shutil.copy2(src, staging / rel)
        runtimes = load_runtimes(staging)
        parity = check_parity(runtimes, x_check)
        engines = write_engine_files(model, staging, runtimes[1], x_check)
        length = int(model.input_shape[1])
        probe = fingerprint(runtimes, length)
        meta = {
            "name": name,
            "version": new_version(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "sequence_length": length,
            "alphabet": ALPHABET,
            "input_layout": f"(batch, {length}, 4) float32 one-hot, channels A,C,G,T; N = all zeros",
            "input_name": INPUT_NAME,
            "output_names": ["prob", "logit"],
            "saved_model_endpoints": {"serve": "probability (batch, 1)", "logits": "pre-sigmoid logit (batch, 1)"},
            "onnx_opset": ONNX_OPSET,
            "onnx_converter": converter,
            "parameters": int(model.count_params()),
            **metadata,
            "parity": parity,
            "fingerprint": probe,
            **engines,
            "packages": package_versions(TRAINING_PACKAGES, missing=None),
        }
        meta = write_metadata(staging, meta)
        meta = add_null(staging)  # null_effects.npy: variant p-values (training/null_effects.py); checksums rewritten
        _swap_into_place(staging, out_dir)
        return meta
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Replace out_dir by staging; at every instant out_dir is either the old or the new export."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    os.chmod(out_dir, 0o755)


def cleanup_stale(models_root: str | os.PathLike) -> None:
    """Remove staging folders left by an export that was killed (never the exports themselves)."""
    for path in Path(models_root).glob(".*.staging-*"):
        shutil.rmtree(path, ignore_errors=True)
