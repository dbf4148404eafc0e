"""Request limits of the HTTP service, read once from the environment (documented in docs/serving.md).

Each Limit carries its own environment variable and wording: beyond it the service answers 413 with a message
naming the limit, the variable that sets it and what to do instead."""
from __future__ import annotations

import os
from dataclasses import dataclass
from http import HTTPStatus

from bentoml.exceptions import BentoMLException


class TooLarge(BentoMLException):
    """A request beyond a configured limit: 413 with the message."""

    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


@dataclass(frozen=True)
class Limit:
    """One request limit: its value, the variable that sets it, what is counted and the advice past it."""

    value: int
    env: str
    unit: str
    advice: str

    def check(self, n: int, what: str = "") -> None:
        """Raise TooLarge when n > value; `what` prefixes the message (e.g. a record name)."""
        if n > self.value:
            raise TooLarge(f"{what + ': ' if what else ''}{n} {self.unit} in one request; the limit is "
                           f"{self.value} (server setting {self.env}); {self.advice}")


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


@dataclass(frozen=True)
class Limits:
    sequences: Limit
    upload_bytes: Limit
    saliency_sequences: Limit
    scan_windows: Limit
    variants: Limit

    def as_dict(self) -> dict[str, int]:
        """{limit name: value}, as /model reports them."""
        return {f"max_{name}": getattr(self, name).value for name in self.__dataclass_fields__}


def from_env() -> Limits:
    """Limits from BINDCNN_MAX_SEQUENCES, BINDCNN_MAX_UPLOAD_BYTES, BINDCNN_MAX_SALIENCY_SEQUENCES,
    BINDCNN_MAX_SCAN_WINDOWS and BINDCNN_MAX_VARIANTS (defaults in the code below)."""
    def limit(env: str, default: int, unit: str, advice: str) -> Limit:
        return Limit(_positive_int(env, default), env, unit, advice)

    return Limits(
        # 50k x 200 nt = 40 MB of one-hot float32 in the worker
        sequences=limit("BINDCNN_MAX_SEQUENCES", 50_000, "sequences", "split the input into several requests"),
        # the request body, and a FASTA upload after un-gzipping
        upload_bytes=limit("BINDCNN_MAX_UPLOAD_BYTES", 64 * 1024 * 1024, "bytes",
                           "split large inputs into several requests"),
        # TensorFlow gradients are ~100x dearer than a prediction
        saliency_sequences=limit("BINDCNN_MAX_SALIENCY_SEQUENCES", 256, "sequences for saliency",
                                 "split the input into several requests"),
        # 1 Mb at stride 1: ~4 s of model time and ~40 MB of JSON out
        scan_windows=limit("BINDCNN_MAX_SCAN_WINDOWS", 1_000_000, "windows",
                           "use a larger stride or split the sequence"),
        variants=limit("BINDCNN_MAX_VARIANTS", 10_000, "variants", "split them into several requests"),
    )
