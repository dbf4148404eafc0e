"""HTTP back end of the scoring client: a running bindcnn service seen as a predictor.

HttpPredictor follows serving.predictor.PredictorLike as Predictor does, and sends
requests of `batch_size` sequences concurrently (bounded thread pool), retrying transient failures.
"""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence
from urllib.parse import urlencode

import numpy as np

from serving import http_connection
from serving.dna import ALPHABET, encode_codes
from serving.http_connection import Answer
from serving.scores_wire import MEDIA_TYPE, scores_from_bytes

log = logging.getLogger("bindcnn.client")

RETRY_STATUS = {500, 502, 503, 504, 429}  # 503: BentoML "process is overloaded"; 5xx: a worker restarting


class ServiceError(RuntimeError):
    """The service could not score a request: unreachable after the retries, or it refused the request."""


class HttpPredictor:
    """Predictions from a running service (`bentoml serve`), API contract of serving/service.py:

    POST /predict_codes   N x L code bytes (0-4) as the body (octet-stream) -> {"probability": [...], "logit": [...]}
    POST /predict_onehot  multipart file field `array` (.npy)  -> {"probability": [...], "logit": [...]}
    GET|POST /model       the model's metadata (sequence_length, alphabet)

    predict_sequences(N strings) / predict_codes(codes: (N, L) uint8) / predict_onehot(x: (N, L, 4)) ->
    {"probability": (N,), "logit": (N,)} float32, in input order. Each call is split into requests of
    `batch_size` sequences, `workers` at a time; a connection error or a 5xx/429 answer is retried `retries`
    times with exponential back-off, then ServiceError is raised. Sequences travel as codes, one byte per
    position (/predict_codes: no JSON, 16x smaller than one-hot); with reverse-complement averaging the
    service scores both strands (/predict_codes' reverse_complement_average). Scores come back as float32 bytes
    (serving.scores_wire) where the service sends them, else as JSON. Over plain http:// without a proxy, the code
    requests go through the standard library's http.client (serving.http_connection, less CPU per request); httpx
    carries everything else.
    """

    prefers_strings = False  # scoring hands over codes (serving.scoring.score), sent as bytes
    raw_codes = True  # codes as the request body (the fast path); False: as a multipart upload
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
        self._httpx = httpx
        self.client = httpx.Client(base_url=self.url, timeout=timeout,
                                   limits=httpx.Limits(max_connections=self.workers + 2))
        self.direct = (http_connection.Connections(self.url, timeout)
                       if http_connection.direct_http(self.url) else None)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="bindcnn-http")
        self.metadata: dict[str, Any] = {}
        if length is None or alphabet is None:
            self.metadata = self.model_info()
        self.length: int = int(length or self.metadata["sequence_length"])
        self.alphabet: str = alphabet or self.metadata.get("alphabet", ALPHABET)

    # -- plumbing ---------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs) -> Any:
        """One request with bounded retries; returns the decoded JSON body."""
        return json.loads(self._exchange(method, path, **kwargs).body)

    def _exchange(self, method: str, path: str, **kwargs) -> Answer:
        """One request with bounded retries: a connection error or a RETRY_STATUS answer is tried again, a 4xx
        raises ServiceError (with .status). Returns the successful Answer."""
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                answer = self._send(method, path, **kwargs)
            except (self._httpx.TransportError, *http_connection.TRANSPORT_ERRORS) as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.info("%s %s failed (%s), attempt %d/%d", method, path, last, attempt + 1, self.retries + 1)
                continue
            text = answer.body[:500].decode("utf-8", "replace")
            if answer.status in RETRY_STATUS:
                last = f"HTTP {answer.status}: {text[:300]}"
                log.info("%s %s: %s, attempt %d/%d", method, path, last, attempt + 1, self.retries + 1)
                continue
            if answer.status >= 400:
                error = ServiceError(f"{self.url}{path} refused the request (HTTP {answer.status}): {text}")
                error.status = answer.status
                raise error
            return answer
        raise ServiceError(f"{self.url}{path} did not answer after {self.retries + 1} attempts ({last})")

    def _send(self, method: str, path: str, **kwargs) -> Answer:
        """One attempt: a raw body (content=) over http.client where the URL allows, anything else with httpx."""
        if (self.direct is not None and method == "POST" and "content" in kwargs
                and set(kwargs) <= {"content", "params", "headers"}):
            query = urlencode(kwargs.get("params") or {})
            return self.direct.post(path + ("?" + query if query else ""), kwargs["content"], kwargs["headers"])
        resp = self.client.request(method, path, **kwargs)
        media = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        return Answer(resp.status_code, media, resp.content)

    def model_info(self) -> dict[str, Any]:
        """The service's /model answer, flattened so that sequence_length/alphabet are top-level."""
        try:
            info = self._request("GET", "/model")
        except ServiceError:
            info = self._request("POST", "/model", json={})
        if isinstance(info, dict) and "sequence_length" not in info:
            for value in info.values():
                if isinstance(value, dict) and "sequence_length" in value:
                    info = {**info, **value}
                    break
        if not isinstance(info, dict) or "sequence_length" not in info:
            raise ServiceError(f"{self.url}/model gave no sequence_length; pass the model length explicitly")
        return info

    def _map(self, fn: Callable[[Any], tuple[np.ndarray, np.ndarray]], parts: list) -> dict[str, np.ndarray]:
        results = list(self.pool.map(fn, parts))  # map keeps the order of `parts`
        prob = np.concatenate([r[0] for r in results]).astype(np.float32)
        logit = np.concatenate([r[1] for r in results]).astype(np.float32)
        return {"probability": prob, "logit": logit}

    @staticmethod
    def _unpack(body: Any, n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            prob = np.asarray(body["probability"], np.float32).reshape(-1)
            logit = np.asarray(body["logit"], np.float32).reshape(-1)
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceError(f"{what}: unexpected answer {str(body)[:200]!r}") from exc
        if len(prob) != n or len(logit) != n:
            raise ServiceError(f"{what}: sent {n} sequences, got {len(prob)} answers")
        return prob, logit

    def _post_codes(self, codes: np.ndarray, rc: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The codes as the raw body (the service's fast path, scores back as bytes); as a multipart upload where
        that is refused (415: a service without serving/service/fastpath.py), from then on."""
        data = np.ascontiguousarray(codes, np.uint8).tobytes()
        if self.raw_codes:
            try:
                answer = self._exchange("POST", "/predict_codes", content=data,
                                        params={"reverse_complement_average": str(rc).lower()},
                                        headers={"content-type": MEDIA_TYPE, "accept": f"{MEDIA_TYPE}, application/json"})
                if answer.content_type == MEDIA_TYPE:
                    try:
                        return scores_from_bytes(answer.body, len(codes))
                    except ValueError as exc:
                        raise ServiceError(f"/predict_codes: {exc}") from None
                return self._unpack(json.loads(answer.body), len(codes), "/predict_codes")
            except ServiceError as exc:
                if getattr(exc, "status", None) != 415:
                    raise
                self.raw_codes = False
        files = {"codes": ("codes.bin", data, "application/octet-stream")}
        body = self._request("POST", "/predict_codes", files=files,
                             data={"reverse_complement_average": "true"} if rc else None)
        return self._unpack(body, len(codes), "/predict_codes")

    # -- predictor interface ----------------------------------------------------------------------
    def predict_sequences(self, sequences: Sequence[str], reverse_complement_average: bool = False
                          ) -> dict[str, np.ndarray]:
        """sequences: N strings of the model's length -> probability, logit (N,) float32."""
        return self.predict_codes(encode_codes(list(sequences), self.length, self.alphabet),
                                  reverse_complement_average)

    def predict_codes(self, codes: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """codes: (N, L) uint8, 0-3 = the alphabet's letters, 4 = N (serving.dna.encode_codes) -> probability,
        logit (N,) float32, through /predict_codes."""
        parts = [codes[i : i + self.batch_size] for i in range(0, len(codes), self.batch_size)]
        return self._map(lambda part: self._post_codes(part, reverse_complement_average), parts)

    def predict_onehot(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """x: (N, L, 4) 0/1 one-hot (validated; a strided view is fine) -> probability, logit (N,) float32; sent
        as codes (an all-zero position is N)."""
        x = np.asarray(x)
        codes = np.where(x.any(axis=-1), x.argmax(axis=-1), 4).astype(np.uint8)
        return self.predict_codes(codes, reverse_complement_average)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
        if self.direct is not None:
            self.direct.close()

    def __enter__(self) -> "HttpPredictor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
