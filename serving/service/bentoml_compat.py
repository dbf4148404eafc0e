"""The one place where bindcnn reaches past BentoML's public API, for what BentoML 1.4.40 lacks. Each reach names
what is missing, the version it was checked against, and what would replace it; tests/test_bentoml_compat.py fails,
naming this module, as soon as the installed BentoML is another version, so whoever upgrades re-checks each reach.

1. quiet_client_errors(): client mistakes (4xx) logged as one WARNING line. BentoML logs every exception raised in
   an endpoint, a pydantic ValidationError or a 400 alike, as "[ERROR] Exception on /path [POST]" with a 30-line
   traceback, from the logger of its private module `bentoml._internal.server.http_app`. Lacking: a public logging
   option for client errors. Replace with: such an option, or BentoML logging 4xx without a traceback.
2. bound_shutdown(): after SIGTERM/SIGINT a worker gets a few seconds for in-flight requests, then exits. uvicorn
   (under BentoML) drains without a time limit, so a long /scan or an open keep-alive connection held `bentoml
   serve` for minutes after Ctrl-C; BentoML's `--timeout-graceful-shutdown` is not applied to a plain `bentoml
   serve` of a service. Lacking: a bounded graceful shutdown for `bentoml serve`. No private attribute is touched
   (standard signal handlers chained to the server's own); it lives here because it works around BentoML.
   Replace with: a working `--timeout-graceful-shutdown` (or service config) for `bentoml serve`.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

import bentoml

CHECKED_VERSION = "1.4.40"  # every reach below was checked against this BentoML
BENTOML_EXCEPTION_LOGGER = "bentoml._internal.server.http_app"  # reach 1: the logger BentoML's endpoints log to
GRACE_ENV = "BINDCNN_SHUTDOWN_GRACE_S"
DEFAULT_GRACE_S = 5.0

log = logging.getLogger("bentoml.bindcnn.shutdown")


def installed_version_checked() -> bool:
    """True when the installed BentoML is the version these reaches were checked against."""
    return bentoml.__version__ == CHECKED_VERSION


# ------------------------------------------------------------------------------------- 1. client errors in the log
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


# --------------------------------------------------------------------------------- 2. a bounded graceful shutdown
def grace_seconds() -> float:
    """BINDCNN_SHUTDOWN_GRACE_S (default 5): seconds in-flight requests get after SIGTERM/SIGINT."""
    raw = os.environ.get(GRACE_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_GRACE_S
    except ValueError:
        raise ValueError(f"{GRACE_ENV}={raw!r} is not a number of seconds") from None


def bound_shutdown(name: str, grace: float | None = None) -> bool:
    """Chain a handler to SIGTERM and SIGINT in this worker: the server's own handler runs first (it stops
    accepting and drains), and `grace` s later the process exits whatever is still open. Returns False
    where handlers cannot be set (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    grace = grace_seconds() if grace is None else grace
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum, frame, previous=previous):
            if not getattr(handler, "armed", False):
                handler.armed = True
                log.info("%s: %s received; in-flight requests get %.0f s", name, signal.Signals(signum).name, grace)
                timer = threading.Timer(grace, _exit_now, (name,))
                timer.daemon = True
                timer.start()
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(0)

        signal.signal(sig, handler)
    return True


def _exit_now(name: str) -> None:
    log.warning("%s: still busy after the shutdown grace period; exiting now", name)
    logging.shutdown()
    os._exit(0)
