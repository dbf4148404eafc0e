"""The exported model directory: its layout, metadata.json, and the checks made before it is used.

models/<name>/ = saved_model/ (TF, endpoints `serve` and `logits`) + model.onnx + metadata.json
(+ plots). metadata.json says what the model expects and achieved and holds the sha256 of every file.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

METADATA_FILE = "metadata.json"
ONNX_FILE = "model.onnx"
SAVED_MODEL_DIR = "saved_model"
FORMAT_VERSION = 1
REQUIRED_KEYS = (
    "name", "version", "format_version", "sequence_length", "alphabet", "input_layout",
    "input_name", "output_names", "files",
)


class ArtifactError(RuntimeError):
    """A model directory that is missing, incomplete, tampered with or inconsistent."""


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def checksum_tree(root: str | os.PathLike, exclude: tuple[str, ...] = (METADATA_FILE,)) -> dict[str, str]:
    """sha256 of every file below root, keyed by its POSIX path relative to root (sorted)."""
    root = Path(root)
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in exclude:
            out[rel] = sha256_file(path)
    return out


def write_metadata(model_dir: str | os.PathLike, metadata: dict[str, Any]) -> dict[str, Any]:
    """Add the checksums of every file in model_dir to metadata and write metadata.json."""
    metadata = dict(metadata, format_version=FORMAT_VERSION, files=checksum_tree(model_dir))
    path = Path(model_dir) / METADATA_FILE
    path.write_text(json.dumps(metadata, indent=2, sort_keys=False) + "\n")
    return metadata


def read_metadata(model_dir: str | os.PathLike) -> dict[str, Any]:
    """Parse and sanity-check metadata.json (no checksum verification; see verify_model_dir)."""
    model_dir = Path(model_dir)
    path = model_dir / METADATA_FILE
    if not model_dir.is_dir():
        raise ArtifactError(f"model directory {model_dir} does not exist. {_HOW_TO_TRAIN}")
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: {model_dir} is not an exported model. {_HOW_TO_TRAIN}")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}). {_HOW_TO_REEXPORT}") from exc
    if not isinstance(meta, dict):
        raise ArtifactError(f"{path} must hold a JSON object. {_HOW_TO_REEXPORT}")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ArtifactError(f"{path} lacks {', '.join(missing)}. {_HOW_TO_REEXPORT}")
    if meta["format_version"] != FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format_version {meta['format_version']}, this code reads {FORMAT_VERSION}. "
            f"{_HOW_TO_REEXPORT}"
        )
    length, alphabet = meta["sequence_length"], meta["alphabet"]
    if not isinstance(length, int) or length <= 0:
        raise ArtifactError(f"{path}: sequence_length must be a positive integer, got {length!r}")
    if not isinstance(alphabet, str) or sorted(alphabet) != sorted("ACGT"):
        raise ArtifactError(f"{path}: alphabet must be the 4 letters ACGT, got {alphabet!r}")
    if not isinstance(meta["files"], dict) or not meta["files"]:
        raise ArtifactError(f"{path}: 'files' must map file names to sha256 digests")
    return meta


def verify_model_dir(model_dir: str | os.PathLike, need: tuple[str, ...] = (ONNX_FILE,)) -> dict[str, Any]:
    """Check metadata.json and the sha256 of every listed file; return the metadata.

    need: paths (relative) that must exist, e.g. model.onnx for the predictor, saved_model for the
    explainer. Raises ArtifactError with a message that says what to run.
    """
    model_dir = Path(model_dir)
    meta = read_metadata(model_dir)
    files: dict[str, str] = meta["files"]
    for required in need:
        if not any(f == required or f.startswith(required.rstrip("/") + "/") for f in files):
            raise ArtifactError(f"{model_dir}: metadata lists no {required}. {_HOW_TO_REEXPORT}")
    for rel, digest in files.items():
        path = model_dir / rel
        if not path.is_file():
            raise ArtifactError(f"{model_dir}: {rel} is listed in metadata.json but missing. {_HOW_TO_REEXPORT}")
        if sha256_file(path) != digest:
            raise ArtifactError(
                f"{model_dir}: {rel} does not match its sha256 in metadata.json (modified or corrupt). "
                f"{_HOW_TO_REEXPORT}"
            )
    return meta


# The fingerprint: logits of the SavedModel on fixed probe inputs, recorded at export. Each runtime
# (ONNX Runtime in the predictor, TensorFlow in the explainer) must reproduce them at start-up, so an
# ONNX file and a SavedModel that do not come from the same weights are refused even when someone
# rewrote metadata.json's checksums to match them.
FINGERPRINT_SEED = 20261125
FINGERPRINT_N = 16
FINGERPRINT_TOLERANCE = 1e-4  # logit difference relative to max(1, |logit|), fp32 on CPU
# cuDNN convolutions run in TF32 on CUDA: 2.5e-4 measured on an H200 (benchmarks/RESULTS-gpu.md)
FINGERPRINT_TOLERANCE_GPU = 1e-2


def scaled_difference(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """|got - expected| / max(1, |expected|), elementwise (float64): how logits are compared everywhere.
    float32 rounding grows with the logit's size, so large logits are judged relative, small ones absolute."""
    expected = np.asarray(expected, np.float64)
    return np.abs(np.asarray(got, np.float64) - expected) / np.maximum(1.0, np.abs(expected))


def probe_inputs(length: int, n: int = FINGERPRINT_N) -> np.ndarray:
    """The fixed probe batch: (n, length, 4) float32 one-hot (ACGT order), ~2% of positions N (all zeros)."""
    rng = np.random.default_rng(FINGERPRINT_SEED)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))]
    x[rng.random((n, length)) < 0.02] = 0.0
    return x


def check_fingerprint(meta: dict[str, Any], logit: np.ndarray, source: str,
                      tolerance: float = FINGERPRINT_TOLERANCE) -> float:
    """Compare logit: (FINGERPRINT_N,) computed by `source` on probe_inputs() with the SavedModel's
    logits recorded in metadata.json. Returns the largest scaled difference; raises ArtifactError."""
    model = f"model {meta['name']}:{meta.get('version')}" if "name" in meta else "the exported model"
    fp = meta.get("fingerprint")
    if not isinstance(fp, dict) or not isinstance(fp.get("logit"), list):
        raise ArtifactError(f"{model}: metadata.json has no fingerprint, so ONNX/SavedModel agreement cannot "
                            f"be checked. {_HOW_TO_REEXPORT}")
    try:
        expected = np.asarray(fp["logit"], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ArtifactError(f"{model}: metadata.json fingerprint is not a list of numbers. {_HOW_TO_REEXPORT}") from None
    got = np.asarray(logit, dtype=np.float64).reshape(-1)
    if got.shape != expected.shape:
        raise ArtifactError(f"{model}: {source} gave {got.size} fingerprint logits, metadata.json records "
                            f"{expected.size}. {_HOW_TO_REEXPORT}")
    worst = float(np.nan_to_num(scaled_difference(got, expected), nan=np.inf).max())
    if not worst <= tolerance:
        raise ArtifactError(
            f"{model}: {source} disagrees with the SavedModel logits recorded at export (largest difference "
            f"{worst:.3g} relative to max(1, |logit|), tolerance {tolerance:g}): model.onnx and saved_model/ do "
            f"not come from the same weights. {_HOW_TO_REEXPORT}"
        )
    return worst


_HOW_TO_TRAIN = "Train and export one with: bindcnn train --name NAME (see README)."
_HOW_TO_REEXPORT = "Re-export it with: bindcnn train --name NAME, or restore the original files."
