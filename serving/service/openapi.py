"""Make what the service sends agree with its OpenAPI document (/docs.json): two BentoML 1.4.40 quirks that
schemathesis found (tests/test_robustness.py), corrected on the schema side and on the response side.

1. A 4xx raised as a BentoMLException (InvalidArgument, our 413) is sent as `[{"error": msg}]` (a tuple in
   BentoML's handler), while the document promises `{"error": msg}`: ErrorBodyMiddleware unwraps it.
2. A request that fails pydantic validation gets `{"error": ..., "detail": [{"loc", "msg", "type", ...}]}`,
   while the document says `detail` is a string: document_validation_errors() documents both forms.
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

Message = dict[str, Any]


def document_validation_errors() -> None:
    """Make the documented 400 body's `detail` a string or pydantic's list of errors (idempotent).

    Edits the schema objects BentoML caches (bentoml._internal.service.openapi.utils.exception_components_schema),
    from which every /docs.json is built."""
    from bentoml._internal.service.openapi.specification import Schema
    from bentoml._internal.service.openapi.utils import exception_components_schema

    error = Schema(
        type="object",
        title="Validation error",
        required=["loc", "msg", "type"],
        properties={
            "loc": Schema(type="array", items=Schema(anyOf=[Schema(type="string"), Schema(type="integer")])),
            "msg": Schema(type="string"),
            "type": Schema(type="string"),
        },
    )
    detail = Schema(title="Error Detail", anyOf=[Schema(type="string"), Schema(type="array", items=error)])
    schema = exception_components_schema().get("InvalidArgument")
    if schema is not None and schema.properties and "detail" in schema.properties:
        schema.properties["detail"] = detail


MAX_ERROR_BODY = 64 * 1024  # larger 4xx bodies are passed through untouched


class ErrorBodyMiddleware:
    """ASGI: a 4xx JSON response whose body is `[{"error": ...}]` is sent as `{"error": ...}`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[Message]],
                      send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0

        async def wrapped_send(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start":
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                if 400 <= message["status"] < 500 and headers.get(b"content-type", b"").startswith(b"application/json"):
                    start = message  # hold it until the body is known
                    return
                return await send(message)
            if message["type"] != "http.response.body" or start is None:
                return await send(message)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if message.get("more_body", False) and size <= MAX_ERROR_BODY:
                return
            body = b"".join(chunks)
            if not message.get("more_body", False):
                body = _unwrap(body)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            if not message.get("more_body", False):
                headers.append((b"content-length", str(len(body)).encode()))
            await send(dict(start, headers=headers))
            start = None
            await send({"type": "http.response.body", "body": body, "more_body": message.get("more_body", False)})

        await self.app(scope, receive, wrapped_send)


def _unwrap(body: bytes) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict) and "error" in data[0]:
        return json.dumps(data[0], separators=(",", ":"), ensure_ascii=False).encode()
    return body
