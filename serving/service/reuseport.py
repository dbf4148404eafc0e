"""Spreads keep-alive connections evenly over the predictor workers. BentoML's workers share one listening socket
and the worker that wakes first accepts all that wait: 32 keep-alive clients were measured all on one of 2 workers.

With SO_REUSEPORT the kernel spreads new connections over one listening socket per worker instead: arm() (in the
`bentoml serve` parent) binds the shared socket with SO_REUSEPORT; adopt() (in each worker but the first) replaces
the worker's inherited socket with its own on the same address, once the worker is ready. BINDCNN_REUSEPORT=0 keeps
BentoML's shared socket.
"""
from __future__ import annotations

import logging
import os
import socket
import sys

log = logging.getLogger("bentoml.bindcnn.reuseport")
ENV = "BINDCNN_REUSEPORT"


def wanted() -> bool:
    return hasattr(socket, "SO_REUSEPORT") and os.environ.get(ENV, "1") != "0"


def arm() -> None:
    """In the process that binds BentoML's API socket (circus' arbiter; called at the service module's import):
    bind TCP sockets with SO_REUSEPORT, so that workers may add their own. Nothing in a worker (argv has --fd) or
    with BINDCNN_REUSEPORT=0; elsewhere it only changes how circus binds."""
    if not wanted() or "--fd" in sys.argv:
        return
    from circus.sockets import CircusSocket

    original = CircusSocket.bind_and_listen
    if getattr(original, "bindcnn_reuseport", False):
        return

    def bind_and_listen(self):
        if not self.is_unix:
            self.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        return original(self)

    bind_and_listen.bindcnn_reuseport = True
    CircusSocket.bind_and_listen = bind_and_listen


def worker_argument(argv: list[str], name: str) -> str | None:
    """The value of option `name` (--name V or --name=V) in a BentoML worker's command line, else None."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def adopt(argv: list[str] | None = None) -> bool:
    """In a BentoML worker (argv has --fd N --worker-id K), once it is ready to serve (uvicorn starts accepting on
    fd N only after the service's __init__): for K > 1, listen on a socket of its own bound to the inherited
    socket's address with SO_REUSEPORT and put it in place of fd N (the first worker keeps the shared socket,
    which stays in the group), so no connection waits for a worker still loading its model. False, and BentoML's
    shared socket, where anything is missing."""
    argv = sys.argv if argv is None else argv
    fd, worker = worker_argument(argv, "--fd"), worker_argument(argv, "--worker-id")
    if not (wanted() and fd and fd.isdigit() and worker and worker.isdigit() and int(worker) > 1):
        return False
    shared = socket.socket(fileno=os.dup(int(fd)))
    try:
        if shared.family not in (socket.AF_INET, socket.AF_INET6) or \
                not shared.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
            return False  # not armed (an older parent, a Unix socket): keep sharing
        own = socket.socket(shared.family, socket.SOCK_STREAM)
        own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        own.bind(shared.getsockname())
        own.listen(int(worker_argument(argv, "--backlog") or 2048))
        own.setblocking(False)
        os.dup2(own.fileno(), int(fd))  # the server will listen on fd N: now this worker's own socket
        own.close()
    except OSError as exc:
        log.warning("worker %s: could not listen on its own socket (%s); sharing the parent's", worker, exc)
        return False
    finally:
        shared.close()
    return True

