"""The binary answer of /predict_codes (request header Accept: application/octet-stream): float32 little-endian,
the N probabilities then the N logits (8 N bytes), so neither side prints or parses 2 N numbers as JSON.

Written by the service (serving/service/fastpath.py) and read by the client (serving/client.py).
"""
from __future__ import annotations

import numpy as np

MEDIA_TYPE = "application/octet-stream"
_DTYPE = np.dtype("<f4")


def scores_to_bytes(prob: np.ndarray, logit: np.ndarray) -> bytes:
    """prob, logit: (N,) float -> 8 N bytes (NaN stays NaN)."""
    return np.concatenate([np.asarray(prob, _DTYPE).reshape(-1), np.asarray(logit, _DTYPE).reshape(-1)]).tobytes()


def scores_from_bytes(body: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """8 n bytes -> (probability (n,) float32, logit (n,) float32); ValueError for any other size."""
    if len(body) != 8 * n:
        raise ValueError(f"a binary answer for {n} sequences has {8 * n} bytes, got {len(body)}")
    both = np.frombuffer(body, _DTYPE).astype(np.float32).reshape(2, n)
    return both[0], both[1]


def accepts_binary(accept: str) -> bool:
    """Whether an Accept header value names application/octet-stream (with q > 0)."""
    for item in accept.split(","):
        media, *params = [p.strip().lower() for p in item.split(";")]
        if media == MEDIA_TYPE:
            q = next((p[2:] for p in params if p.startswith("q=")), "1")
            try:
                return float(q) > 0
            except ValueError:
                return True
    return False
