"""/predict_codes with the codes as the raw request body (Content-Type application/octet-stream), answered before
BentoML's request handling: no multipart parsing, no temporary file, no pydantic; the fastest transport.

BentoML 1.4's service API has no raw bodies (its file parameters are multipart), and its multipart path cost the
worker ~3 ms of CPU per 1000-sequence request on top of the model's ~11 (benchmarks/RESULTS.md, section 3b). The
multipart form of /predict_codes stays the documented BentoML endpoint; this ASGI middleware takes only POST
/predict_codes whose Content-Type is application/octet-stream, with the same checks, limits, answers and errors.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from serving.scores_wire import MEDIA_TYPE, accepts_binary, scores_to_bytes

ROUTE = "/predict_codes"
OCTET = MEDIA_TYPE.encode()
SERVED: dict[str, Any] = {}  # {"predictor", "limits"}: set by BindCNN.__init__ in this worker

Message = dict[str, Any]


class CodesFastPath:
    """ASGI: POST /predict_codes, Content-Type application/octet-stream, body N x L code bytes (or a .npy),
    ?reverse_complement_average=true -> {"probability": [...], "logit": [...]} as the multipart form answers, or
    the same scores as float32 bytes where the request says Accept: application/octet-stream (serving.scores_wire)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if (scope["type"] != "http" or scope.get("path") != ROUTE or scope.get("method") != "POST"
                or "predictor" not in SERVED or _content_type(scope) != OCTET):
            return await self.app(scope, receive, send)
        limits = SERVED["limits"]
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limits.upload_bytes.value:
                return await _answer(send, 413, _error(f"the request body is larger than {limits.upload_bytes.value} "
                                                       f"bytes (server setting {limits.upload_bytes.env})"))
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        rc = query.get("reverse_complement_average", ["false"])[-1].lower() in ("1", "true", "yes")
        binary = accepts_binary(_header(scope, b"accept").decode("latin-1"))
        status, body = await _score(b"".join(chunks), rc, binary)
        await _answer(send, status, body, OCTET if binary and status == 200 else b"application/json")


async def _score(data: bytes, rc: bool, binary: bool) -> tuple[int, bytes]:
    from anyio import to_thread
    from bentoml.exceptions import BentoMLException

    from serving.service import metrics
    from serving.service.responses import scores_json
    from serving.service.uploads import codes_from_bytes

    predictor, limits = SERVED["predictor"], SERVED["limits"]

    def work() -> tuple[int, bytes]:
        try:
            codes = codes_from_bytes(data, limits, predictor.length)
        except BentoMLException as exc:  # InvalidArgument (400), the limits' TooLarge (413)
            return int(exc.error_code), _error(str(exc))
        out = predictor.predict_codes(codes, rc)
        metrics.scored(len(codes))
        if binary:
            return 200, scores_to_bytes(out["probability"], out["logit"])
        return 200, scores_json(out["probability"], out["logit"]).encode()

    return await to_thread.run_sync(work)  # the model off the event loop, as BentoML runs sync APIs


def _header(scope: dict, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return b""


def _content_type(scope: dict) -> bytes:
    return _header(scope, b"content-type").split(b";")[0].strip().lower()


def _error(message: str) -> bytes:
    import json

    return json.dumps({"error": message}).encode()


async def _answer(send: Callable[[Message], Awaitable[None]], status: int, body: bytes,
                  media_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
