"""HTTP back end of the scoring client: a running bindcnn service seen as a predictor.

HttpPredictor follows serving.predictor.PredictorLike as Predictor does: it sends requests of `batch_size`
sequences, `workers` at a time, over one keep-alive httpx.Client, and retries transient failures.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from serving.dna import ALPHABET, encode_codes

log = logging.getLogger("bindcnn.client")

RETRY_STATUS = {500, 502, 503, 504, 429}  # 503: BentoML "process is overloaded"; 5xx: a worker restarting
RAW_CODES = "/raw/predict_codes"  # the codes as the request body (serving/service/routes.py)


class ServiceError(RuntimeError):
    """The service could not score a request: unreachable after the retries, or it refused it (status: the HTTP
    status of a refusal, else None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class HttpPredictor:
    """Predictions from a running service (`bindcnn serve`):

    POST /raw/predict_codes   N x L code bytes (0-4) as the body -> {"probability": [...], "logit": [...]}
    GET  /model               the model's metadata (sequence_length, alphabet)

    predict_sequences(N strings) / predict_codes(codes: (N, L) uint8) / predict_onehot(x: (N, L, 4)) ->
    {"probability": (N,), "logit": (N,)} float32, in input order. Each call is split into requests of `batch_size`
    sequences, `workers` at a time; a connection error or a 5xx/429 answer is retried `retries` times with
    exponential back-off, then ServiceError is raised. Sequences travel as codes, one byte per position (16x
    smaller than one-hot, no JSON to parse on the server); with reverse-complement averaging the service scores
    both strands.
    """

    prefers_strings = False  # scoring hands over codes (serving.scoring.score)
    remote = True  # waits on the network: scoring reads the next batch meanwhile (serving.scoring.score)

    def __init__(self, url: str, batch_size: int = 1000, workers: int = 4, retries: int = 3,
                 timeout: float = 300.0, length: int | None = None, alphabet: str | None = None,
                 backoff: float = 0.5):
        import httpx

        self.url = url.rstrip("/")
        self.batch_size = max(1, int(batch_size))
        self.workers = max(1, int(workers))
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self._transport_errors = (httpx.TransportError,)
        self.client = httpx.Client(base_url=self.url, timeout=timeout,
                                   limits=httpx.Limits(max_connections=self.workers + 2))
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="bindcnn-http")
        self.metadata: dict[str, Any] = {}
        if length is None or alphabet is None:
            self.metadata = self.model_info()
        self.length: int = int(length or self.metadata["sequence_length"])
        self.alphabet: str = alphabet or self.metadata.get("alphabet", ALPHABET)

    def _request(self, method: str, path: str, **kwargs) -> Any:
        """One request with bounded retries: a connection error or a RETRY_STATUS answer is tried again, another
        4xx/5xx raises ServiceError. Returns the decoded JSON body."""
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                resp = self.client.request(method, path, **kwargs)
            except self._transport_errors as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.info("%s %s failed (%s), attempt %d/%d", method, path, last, attempt + 1, self.retries + 1)
                continue
            if resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                log.info("%s %s: %s, attempt %d/%d", method, path, last, attempt + 1, self.retries + 1)
                continue
            if resp.status_code >= 400:
                raise ServiceError(f"{self.url}{path} refused the request (HTTP {resp.status_code}): "
                                   f"{resp.text[:500]}", resp.status_code)
            try:
                return resp.json()
            except ValueError as exc:
                raise ServiceError(f"{self.url}{path}: the answer is not JSON ({resp.text[:200]!r})") from exc
        raise ServiceError(f"{self.url}{path} did not answer after {self.retries + 1} attempts ({last})")

    def model_info(self) -> dict[str, Any]:
        """The service's /model answer, flattened so that sequence_length/alphabet are top-level."""
        info = self._request("GET", "/model")
        if isinstance(info, dict) and "sequence_length" not in info:
            for value in info.values():
                if isinstance(value, dict) and "sequence_length" in value:
                    info = {**info, **value}
                    break
        if not isinstance(info, dict) or "sequence_length" not in info:
            raise ServiceError(f"{self.url}/model gave no sequence_length; pass the model length explicitly")
        return info

    def _post_codes(self, codes: np.ndarray, rc: bool) -> tuple[np.ndarray, np.ndarray]:
        """codes: (n, L) uint8 -> (probability (n,), logit (n,)) float32 of one request."""
        body = self._request("POST", RAW_CODES, content=np.ascontiguousarray(codes, np.uint8).tobytes(),
                             params={"reverse_complement_average": str(rc).lower()},
                             headers={"content-type": "application/octet-stream"})
        try:
            prob = np.asarray(body["probability"], np.float32).reshape(-1)
            logit = np.asarray(body["logit"], np.float32).reshape(-1)
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceError(f"{RAW_CODES}: unexpected answer {str(body)[:200]!r}") from exc
        if len(prob) != len(codes) or len(logit) != len(codes):
            raise ServiceError(f"{RAW_CODES}: sent {len(codes)} sequences, got {len(prob)} answers")
        return prob, logit

    def predict_sequences(self, sequences: Sequence[str], reverse_complement_average: bool = False
                          ) -> dict[str, np.ndarray]:
        """sequences: N strings of the model's length -> probability, logit (N,) float32."""
        return self.predict_codes(encode_codes(list(sequences), self.length, self.alphabet),
                                  reverse_complement_average)

    def predict_codes(self, codes: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """codes: (N, L) uint8, 0-3 = the alphabet's letters, 4 = N (serving.dna.encode_codes) -> probability,
        logit (N,) float32."""
        parts = [codes[i:i + self.batch_size] for i in range(0, len(codes), self.batch_size)]
        results = list(self.pool.map(lambda part: self._post_codes(part, reverse_complement_average), parts))
        if not results:
            return {"probability": np.zeros(0, np.float32), "logit": np.zeros(0, np.float32)}
        return {"probability": np.concatenate([r[0] for r in results]),
                "logit": np.concatenate([r[1] for r in results])}

    def predict_onehot(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """x: (N, L, 4) 0/1 one-hot (validated; a strided view is fine) -> probability, logit (N,) float32; sent
        as codes (an all-zero position is N)."""
        x = np.asarray(x)
        codes = np.where(x.any(axis=-1), x.argmax(axis=-1), 4).astype(np.uint8)
        return self.predict_codes(codes, reverse_complement_average)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    def __enter__(self) -> "HttpPredictor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
