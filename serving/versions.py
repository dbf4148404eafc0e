"""Installed versions of the packages a run depends on, for metadata.json, /model and benchmark reports.

One list, one lookup: a package that is not installed says so instead of failing."""
from __future__ import annotations

import platform

RUNTIME_PACKAGES = ("bindcnn", "numpy", "onnxruntime-gpu", "bentoml")
TRAINING_PACKAGES = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime-gpu", "numpy", "h5py", "bentoml")


def package_versions(packages: tuple[str, ...] = RUNTIME_PACKAGES, missing: str | None = "not installed"
                     ) -> dict[str, str]:
    """{"python": "3.11.x", package: version, ...}; a missing package maps to `missing` (None: left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            if missing is not None:
                out[name] = missing
    return out
