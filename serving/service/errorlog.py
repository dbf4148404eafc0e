"""Client mistakes (4xx) logged as one WARNING line with the reason; only server faults keep a traceback.

BentoML 1.4.40 logs every exception raised in an endpoint, a pydantic ValidationError or a 400 alike, as
"[ERROR] Exception on /path [POST]" with a 30-line traceback (bentoml._internal.server.http_app.log_exception).
A filter on that logger rewrites the records of client errors in place; everything else passes untouched.
"""
from __future__ import annotations

import logging

BENTOML_EXCEPTION_LOGGER = "bentoml._internal.server.http_app"


def client_error(exc: BaseException | None) -> tuple[int, str] | None:
    """(status, one-line reason) when exc is a client's mistake (validation, or a BentoML 4xx), else None."""
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors(include_url=False)]
        return 400, "; ".join(parts[:3]) + (f" (+{len(parts) - 3} more)" if len(parts) > 3 else "")
    if isinstance(exc, BentoMLException):
        status = int(exc.error_code.value)
        if 400 <= status < 500:
            return status, " ".join(str(exc).split())[:500]
    return None


class ClientErrorFilter(logging.Filter):
    """Turns "Exception on /path [POST]" + traceback into "client error 400 on /path [POST]: reason" at WARNING."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.levelno >= logging.ERROR:
            found = client_error(record.exc_info[1])
            if found is not None:
                status, reason = found
                path, method = (tuple(record.args) + ("?", "?"))[:2] if isinstance(record.args, tuple) else ("?", "?")
                record.msg, record.args = "client error %d on %s [%s]: %s", (status, path, method, reason)
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def quiet_client_errors() -> None:
    """Install the filter once in this worker (idempotent)."""
    logger = logging.getLogger(BENTOML_EXCEPTION_LOGGER)
    if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
        logger.addFilter(ClientErrorFilter())
