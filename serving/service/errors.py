"""Every 4xx the service sends, shaped as its OpenAPI document says and counted in /metrics: one ASGI middleware
(ErrorAnswers), the outer of the service's two (serving/service/guard.py is the other).

Shape: a 4xx raised as a BentoMLException (InvalidArgument, our 413) is sent by BentoML 1.4.40 as
`[{"error": msg}]`, while the document promises `{"error": msg}` (schemathesis found it, tests/test_robustness.py):
the list is unwrapped. Count: every 4xx except 404/405 adds one to bindcnn_rejected_inputs_total{reason}; an
endpoint that knows better (a bad character, a wrong length) names the reason with metrics.note_reject() first.
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from serving.service import metrics

Message = dict[str, Any]
MAX_ERROR_BODY = 64 * 1024  # larger 4xx bodies are passed through untouched


class ErrorAnswers:
    """ASGI: 4xx JSON bodies `[{"error": ...}]` sent as `{"error": ...}`; 4xx answers counted by reason."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        note, token = metrics.open_note(scope.get("path", ""))
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0

        async def shaped_send(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
                metrics.count_reject(status, note)
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                if 400 <= status < 500 and headers.get(b"content-type", b"").startswith(b"application/json"):
                    start = message  # hold it until the body is known
                    return
                return await send(message)
            if message["type"] != "http.response.body" or start is None:
                return await send(message)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if more and size <= MAX_ERROR_BODY:
                return
            body = b"".join(chunks) if more else _unwrap(b"".join(chunks))
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            if not more:
                headers.append((b"content-length", str(len(body)).encode()))
            await send(dict(start, headers=headers))
            start = None
            await send({"type": "http.response.body", "body": body, "more_body": more})

        try:
            await self.app(scope, receive, shaped_send)
        finally:
            metrics.close_note(token)


def _unwrap(body: bytes) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict) and "error" in data[0]:
        return json.dumps(data[0], separators=(",", ":"), ensure_ascii=False).encode()
    return body
