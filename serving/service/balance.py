"""Keeps keep-alive connections even over a server's predictor workers. SO_REUSEPORT (serving.service.reuseport)
places each new connection by a hash, so a client's few connections often land unevenly: 4 on 2 workers fell 3:1 or
4:0 for 9 of 16 clients, at 67-102k JSON /predict sequences/s against 107-121k for 2:2 (benchmarks/placement.py).

Each worker counts its open connections in its slot of a small file shared by the server's workers; a worker that
holds more than its share, ceil(all / workers), answers a request with `Connection: close`, and the client's next
connection is placed again. BINDCNN_BALANCE=0 turns this off.
"""
from __future__ import annotations

import atexit
import glob
import logging
import mmap
import os
import socket
import sys
import tempfile
from typing import Any, Awaitable, Callable

from serving.service.reuseport import worker_argument

log = logging.getLogger("bentoml.bindcnn.balance")
ENV = "BINDCNN_BALANCE"
SLOTS = 1024  # int32 counts, one per worker (worker i in slot i - 1)
CLOSE = (b"connection", b"close")
PREFIX = "bindcnn-connections-"  # + the server's pid + "-" + its port
_share: "Share | None" = None  # this worker's, once install() ran

Message = dict[str, Any]


def wanted() -> bool:
    return os.environ.get(ENV, "1") != "0"


def slots_folder() -> str:
    """/dev/shm where there is one (memory, never written to disk), else the temporary folder."""
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def slots_path(server_pid: int, port: int) -> str:
    """The counts file of the server whose `bentoml serve` process is server_pid, listening on port."""
    return os.path.join(slots_folder(), f"{PREFIX}{server_pid}-{port}")


class Share:
    """This worker's view of the counts file at `path`: slot `index` (0-based) is its own, `workers` slots count.
    opened()/closed() follow its connections; over_share() says whether to close the one being answered."""

    def __init__(self, path: str, index: int, workers: int):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < SLOTS * 4:
                os.ftruncate(fd, SLOTS * 4)  # zeros; every worker may race here, with the same result
            self._map = mmap.mmap(fd, SLOTS * 4)
        finally:
            os.close(fd)
        self.counts = memoryview(self._map).cast("i")
        self.index, self.workers, self.closing = index, workers, 0
        self.counts[index] = 0  # a restarted worker starts afresh

    def opened(self) -> None:
        self.counts[self.index] += 1

    def closed(self) -> None:
        self.counts[self.index] = max(0, self.counts[self.index] - 1)
        self.closing = max(0, self.closing - 1)

    def over_share(self) -> bool:
        """True (and one more connection counted as closing) when this worker holds more than its share."""
        mine = self.counts[self.index] - self.closing
        if mine <= 1:  # one connection is never more than a share
            return False
        total = sum(max(0, c) for c in self.counts[:self.workers]) - self.closing
        if mine > -(-total // self.workers):
            self.closing += 1
            return True
        return False


def arm() -> None:
    """In `bentoml serve` (no --fd in argv): remove this server's counts files when it exits, and those of servers
    that are gone without removing theirs (killed)."""
    if "--fd" in sys.argv or not wanted():
        return
    prefix = os.path.join(slots_folder(), PREFIX)
    for path in glob.glob(prefix + "*"):
        pid = path[len(prefix):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            _unlink(path)
    atexit.register(lambda: [_unlink(path) for path in glob.glob(f"{prefix}{os.getpid()}-*")])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        pass
    return True


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def install(workers: int, argv: list[str] | None = None) -> Share | None:
    """In a BentoML predictor worker (argv has --fd N --worker-id K) of `workers`: count its connections (uvicorn's
    HTTP protocols) in the counts file of its parent `bentoml serve` and its TCP port. None where off or alone."""
    global _share
    argv = sys.argv if argv is None else argv
    fd, worker = worker_argument(argv, "--fd"), worker_argument(argv, "--worker-id")
    if not (wanted() and workers > 1 and fd and fd.isdigit() and worker and worker.isdigit()
            and 1 <= int(worker) <= min(workers, SLOTS)):
        return None
    listening = socket.socket(fileno=os.dup(int(fd)))
    try:
        if listening.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        port = listening.getsockname()[1]
    finally:
        listening.close()
    try:
        _share = Share(slots_path(os.getppid(), port), int(worker) - 1, workers)
    except OSError as exc:  # no writable /dev/shm or temporary folder: connections stay where the kernel put them
        log.warning("worker %s: no connection counts file (%s); connections are not balanced", worker, exc)
        return None
    from uvicorn.protocols.http import h11_impl, httptools_impl

    for protocol in (h11_impl.H11Protocol, httptools_impl.HttpToolsProtocol):
        _count(protocol)
    return _share


def _count(protocol: type) -> None:
    if getattr(protocol, "bindcnn_counted", False):
        return
    made, lost = protocol.connection_made, protocol.connection_lost

    def connection_made(self, transport) -> None:
        made(self, transport)
        if _share is not None:
            _share.opened()

    def connection_lost(self, exc) -> None:
        lost(self, exc)
        if _share is not None:
            _share.closed()

    protocol.connection_made, protocol.connection_lost = connection_made, connection_lost
    protocol.bindcnn_counted = True


class ConnectionBalance:
    """ASGI: adds `Connection: close` to the answer of a request that came while this worker held more than its
    share of connections."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        share = _share
        if share is None or scope["type"] != "http" or not share.over_share():  # decided as the request comes
            return await self.app(scope, receive, send)

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), CLOSE]}
            await send(message)

        await self.app(scope, receive, send_closing)
