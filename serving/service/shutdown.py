"""Bounded shutdown of a service worker: after SIGTERM or SIGINT, in-flight requests get a few seconds, then the
worker exits, so Ctrl-C, `kill` and Kubernetes stop the server promptly, port freed, whatever clients do.

Why: uvicorn (under BentoML) drains gracefully without a time limit: a long request (a 1 Mb /scan) or an open
keep-alive connection held a worker, and so `bentoml serve`, for minutes after Ctrl-C. BentoML's
--timeout-graceful-shutdown flag is not applied by a plain `bentoml serve` at the repository root.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

GRACE_ENV = "BINDCNN_SHUTDOWN_GRACE_S"
DEFAULT_GRACE_S = 5.0

log = logging.getLogger("bentoml.bindcnn.shutdown")


def grace_seconds() -> float:
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
