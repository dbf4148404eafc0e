"""The model's own Prometheus metrics, beside BentoML's request metrics on /metrics: sequences scored, inputs
rejected (by reason), windows scanned, batch sizes, and an info gauge naming the model and its execution provider.

prometheus_client metrics made in a worker are collected from every worker: `bentoml serve` gives each worker
PROMETHEUS_MULTIPROC_DIR, and its /metrics reads all of them (MultiProcessCollector). The names are listed in
docs/serving.md. Rejections are counted by serving/service/errors.py from the response status; an endpoint that knows
better (a bad character, a wrong length) names the reason with note_reject() first.
"""
from __future__ import annotations

import contextvars
from prometheus_client import Counter, Gauge, Histogram

SEQUENCES = Counter("bindcnn_sequences_scored", "Sequences scored by the model (windows of /scan not included)",
                    ["endpoint", "model"])
REJECTED = Counter("bindcnn_rejected_inputs", "Requests refused as bad input (4xx), by reason", ["reason"])
WINDOWS = Counter("bindcnn_windows_scanned", "Windows scored by /scan and /scan_fasta")
BATCH = Histogram("bindcnn_batch_size", "Sequences per model call of an endpoint (for /predict_one: per "
                  "shared batch)", ["endpoint"], buckets=tuple(2.0 ** k for k in range(0, 17)))
INFO = Gauge("bindcnn_model_info", "The model served (always 1): name, version, execution provider, service",
             ["model", "version", "provider", "service"], multiprocess_mode="max")

STATUS_REASONS = {400: "invalid_input", 413: "too_large", 415: "not_multipart", 422: "invalid_input"}
_NOTE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("bindcnn_reject_note", default=None)


def model_info(name: str, version: str, provider: str, service: str = "predictor") -> None:
    INFO.labels(model=name, version=version, provider=provider, service=service).set(1)


def current_endpoint() -> str:
    """The route of the request being served ("predict" for /predict), from the request's note
    (serving.service.errors); "other"."""
    note = _NOTE.get()
    return (note or {}).get("path", "/other").lstrip("/") or "other"


def scored(n: int, endpoint: str | None = None, model: str = "") -> None:
    """n sequences scored in one model call of `endpoint` (default: the current request's route) by `model` (its
    name; several models can be served side by side)."""
    endpoint = endpoint or current_endpoint()
    SEQUENCES.labels(endpoint=endpoint, model=model).inc(n)
    BATCH.labels(endpoint=endpoint).observe(n)


def scanned(windows: int) -> None:
    WINDOWS.inc(windows)


def sequence_reason(exc: Exception) -> str:
    """The reject reason of a serving.dna.SequenceError: bad_character, empty_sequence or wrong_length."""
    if getattr(exc, "position", None) is not None:
        return "bad_character"
    return "empty_sequence" if str(getattr(exc, "reason", exc)).startswith("empty") else "wrong_length"


def note_reject(reason: str) -> None:
    """Name the reason of the 4xx this request is about to get (else the status decides: STATUS_REASONS)."""
    note = _NOTE.get()
    if note is not None:  # a dict shared with the middleware's context, also from a worker thread
        note["reason"] = reason


def open_note(path: str) -> tuple[dict, contextvars.Token]:
    """Start a request's note (its route; the reason of a 4xx, set by note_reject); close_note(token) ends it."""
    note: dict = {"path": path}
    return note, _NOTE.set(note)


def close_note(token: contextvars.Token) -> None:
    _NOTE.reset(token)


def count_reject(status: int, note: dict) -> None:
    """Count a 4xx answer (not 404/405) in bindcnn_rejected_inputs_total by the noted reason, else its status."""
    if 400 <= status < 500 and status not in (404, 405):
        REJECTED.labels(reason=note.get("reason") or STATUS_REASONS.get(status, f"http_{status}")).inc()
