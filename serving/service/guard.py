"""ASGI middleware in front of the BentoML app: turns bad request bodies into 400/413/415 answers
that BentoML 1.4 would otherwise give as 500s, caps the body size, and serves GET on POST-only routes.

BentoML 1.4.40 answers a multipart body without a boundary, a malformed multipart body, or a non-file
form field over 1 MiB with 500 (Starlette raises a 400 that BentoML re-raises as 500); it has no
request-size cap; and a file parameter given as text is fetched as a URL or read as a server path.
This middleware reads the body once (at most max_body_bytes), pre-parses multipart bodies with
Starlette's own parser (the same limits BentoML uses, so whatever passes here parses there), checks
that file fields are real uploads, and replays the body to the app.
"""
from __future__ import annotations

import os
from typing import Any, Awaitable, Callable, Iterable, Mapping

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


MAX_FILENAME_BYTES = 200  # file systems allow 255 for the whole name, suffix included

_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")  # BentoML parses both as forms
# A JSON object sent with one of these (none: a bare client; urlencoded: `curl -d`) is taken as JSON.
_JSON_GUESSED = ("", "application/x-www-form-urlencoded", "text/plain")


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class RequestGuard:
    """app: the ASGI app; max_body_bytes: largest accepted request body, set by the variable body_env;
    file_fields: route -> names of its file (multipart) parameters;
    get_as_post: routes where GET is answered like an empty POST."""

    def __init__(self, app, max_body_bytes: int, body_env: str, file_fields: Mapping[str, Iterable[str]] | None = None,
                 get_as_post: Iterable[str] = ()):
        self.app = app
        self.max_body_bytes = int(max_body_bytes)
        self.body_env = body_env
        self.file_fields = {route: frozenset(names) for route, names in (file_fields or {}).items()}
        self.get_as_post = frozenset(get_as_post)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if scope["method"] == "GET" and path in self.get_as_post:
            scope = dict(scope, method="POST",
                         headers=[(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
                         + [(b"content-type", b"application/json")])
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)

        from starlette.datastructures import Headers

        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                return await _error(send, 400, f"Content-Length {length!r} is not a number")
            if int(length) > self.max_body_bytes:
                return await _error(send, 413, self._too_large())
        ctype = headers.get("content-type", "")
        media = ctype.split(";")[0].strip().lower()
        files = self.file_fields.get(path)
        if files and media != "multipart/form-data":
            names = " and ".join(f"'{f}'" for f in sorted(files))
            return await _error(send, 415, f"{path} takes a multipart/form-data upload (file field {names}), "
                                           f"e.g. curl -F {sorted(files)[0]}=@FILE ...; got Content-Type {ctype or 'none'!r}")
        try:
            body = await self._read_body(receive)
        except _BodyTooLarge:
            return await _error(send, 413, self._too_large())
        except _ClientGone:
            return None
        if not files and media in _JSON_GUESSED and body.lstrip()[:1] == b"{":
            if not _is_json(body):
                return await _error(send, 400, f"{path}: the body is not valid JSON (Content-Type {ctype or 'none'!r}); "
                                               "send a JSON object with Content-Type: application/json")
            scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k != b"content-type"]
                         + [(b"content-type", b"application/json")])  # curl -d sends JSON as a form
            media = "application/json"
        if media in _FORM_TYPES:
            problem = await _check_form(scope, body, files or frozenset())
            if problem:
                return await _error(send, 400, problem)
        return await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> str:
        return (f"request body larger than {self.max_body_bytes} bytes (set {self.body_env} on the server "
                f"to change it; split large inputs into several requests)")

    async def _read_body(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _check_form(scope: Scope, body: bytes, file_fields: frozenset[str]) -> str | None:
    """None when Starlette parses the (multipart or urlencoded) form and every file field is an upload,
    else the reason."""
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException
    from starlette.requests import Request

    request = Request(scope, _replay(body, None))
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        form = await request.form()
    except HTTPException as exc:
        return f"malformed {kind} body: {exc.detail}"
    except Exception as exc:  # whatever fails here would fail in BentoML's parse as a 500
        return f"malformed {kind} body: {getattr(exc, 'message', None) or exc}"
    try:
        for name, value in form.multi_items():  # BentoML uses the name as a temp-file suffix
            if isinstance(value, UploadFile) and value.filename:
                base = os.path.basename(value.filename)
                if len(base.encode("utf-8", "surrogateescape")) > MAX_FILENAME_BYTES or "\0" in base:
                    return (f"form field '{name}': file name too long or not printable "
                            f"(at most {MAX_FILENAME_BYTES} bytes)")
        for name in sorted(file_fields):
            for value in form.getlist(name):
                if not isinstance(value, UploadFile):
                    return (f"form field '{name}' must be a file upload (curl -F {name}=@FILE), "
                            f"not a text value")
    finally:
        await form.close()
    return None


def _is_json(body: bytes) -> bool:
    import json

    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _replay(body: bytes, receive: Receive | None) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if receive is None:
            return {"type": "http.disconnect"}
        return await receive()

    return replay


async def _error(send: Send, status: int, message: str) -> None:
    from starlette.responses import JSONResponse

    response = JSONResponse({"error": message}, status_code=status)
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - JSONResponse never reads
    return {"type": "http.disconnect"}


def file_routes(service) -> dict[str, list[str]]:
    """route -> the multipart file parameters of a BentoML service's API there, e.g. {'/predict_fasta': ['fasta']}
    (RequestGuard's file_fields)."""
    return {m.route: list(m.input_spec.multipart_fields)
            for m in service.apis.values() if getattr(m.input_spec, "multipart_fields", None)}
