"""Request limits of the HTTP service, read once from the environment (documented in README "Serving").

Beyond a limit the service answers 413 with a message naming the limit and the variable that sets it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

MAX_SEQUENCES_ENV = "BINDCNN_MAX_SEQUENCES"
MAX_UPLOAD_BYTES_ENV = "BINDCNN_MAX_UPLOAD_BYTES"
MAX_SALIENCY_ENV = "BINDCNN_MAX_SALIENCY_SEQUENCES"
MAX_SCAN_WINDOWS_ENV = "BINDCNN_MAX_SCAN_WINDOWS"
MAX_VARIANTS_ENV = "BINDCNN_MAX_VARIANTS"

DEFAULT_MAX_SEQUENCES = 50_000  # one request: 50k x 200 nt = 40 MB of one-hot float32 in the worker
DEFAULT_MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # request body, and a FASTA upload after un-gzipping
DEFAULT_MAX_SALIENCY = 256  # TensorFlow gradients are ~100x dearer than a prediction
DEFAULT_MAX_SCAN_WINDOWS = 1_000_000  # /scan: 1 Mb at stride 1, ~4 s of model time and ~40 MB of JSON out
DEFAULT_MAX_VARIANTS = 10_000  # /variants: two windows each


@dataclass(frozen=True)
class Limits:
    max_sequences: int = DEFAULT_MAX_SEQUENCES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_saliency_sequences: int = DEFAULT_MAX_SALIENCY
    max_scan_windows: int = DEFAULT_MAX_SCAN_WINDOWS
    max_variants: int = DEFAULT_MAX_VARIANTS


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


def from_env() -> Limits:
    """Limits from BINDCNN_MAX_SEQUENCES, BINDCNN_MAX_UPLOAD_BYTES, BINDCNN_MAX_SALIENCY_SEQUENCES,
    BINDCNN_MAX_SCAN_WINDOWS and BINDCNN_MAX_VARIANTS."""
    return Limits(
        max_sequences=_positive_int(MAX_SEQUENCES_ENV, DEFAULT_MAX_SEQUENCES),
        max_upload_bytes=_positive_int(MAX_UPLOAD_BYTES_ENV, DEFAULT_MAX_UPLOAD_BYTES),
        max_saliency_sequences=_positive_int(MAX_SALIENCY_ENV, DEFAULT_MAX_SALIENCY),
        max_scan_windows=_positive_int(MAX_SCAN_WINDOWS_ENV, DEFAULT_MAX_SCAN_WINDOWS),
        max_variants=_positive_int(MAX_VARIANTS_ENV, DEFAULT_MAX_VARIANTS),
    )
