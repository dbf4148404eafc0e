"""serving.service.balance: workers count their connections in a shared file, a worker over its share answers with
`Connection: close`, and a real 2-worker server ends with a client's 4 keep-alive connections 2:2."""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket

import pytest

from serving.service import balance


@pytest.fixture
def two(tmp_path):
    path = str(tmp_path / "counts")
    return balance.Share(path, 0, 2), balance.Share(path, 1, 2)


def test_a_worker_over_its_share_closes_one_connection_at_a_time(two):
    a, b = two
    for _ in range(3):
        a.opened()
    b.opened()
    assert list(a.counts[:2]) == [3, 1] and list(b.counts[:2]) == [3, 1]  # one file, seen by both
    assert b.over_share() is False
    assert a.over_share() is True  # 3 > ceil(4 / 2)
    assert a.over_share() is False  # the one closing already counts
    a.closed()
    assert a.closing == 0 and a.over_share() is False  # 2:1 of 3 is within the share of 2
    b.opened()
    b.opened()
    assert b.over_share() is False  # 2:3: ceil(5 / 2) = 3


def test_all_on_one_worker_is_moved_until_even(two):
    a, b = two
    for _ in range(4):
        a.opened()
    closes = 0
    while a.over_share():  # each answer closes one; the client's new connection lands on b
        closes += 1
        a.closed()
        b.opened()
    assert closes == 2 and list(a.counts[:2]) == [2, 2]


def test_a_restarted_worker_starts_from_zero_and_counts_never_go_negative(tmp_path):
    path = str(tmp_path / "counts")
    a = balance.Share(path, 0, 2)
    a.opened()
    a.opened()
    again = balance.Share(path, 0, 2)
    assert again.counts[0] == 0
    again.closed()  # a connection from before the restart
    assert again.counts[0] == 0


@pytest.mark.parametrize("argv, workers, env", [
    (["--fd", "7", "--worker-id", "1"], 1, "1"),  # alone
    (["--worker-id", "1"], 2, "1"),  # no socket
    (["--fd", "x", "--worker-id", "1"], 2, "1"),
    (["--fd", "7", "--worker-id", "3"], 2, "1"),  # not one of the workers
    (["--fd", "7", "--worker-id", "1"], 2, "0"),  # BINDCNN_BALANCE=0
])
def test_install_does_nothing_where_it_cannot_or_need_not(monkeypatch, argv, workers, env):
    monkeypatch.setenv(balance.ENV, env)
    monkeypatch.setattr(balance, "_share", None)
    assert balance.install(workers, argv) is None and balance._share is None


def test_install_takes_its_slot_and_counts_uvicorns_connections(monkeypatch):
    from uvicorn.protocols.http import h11_impl, httptools_impl

    monkeypatch.delenv(balance.ENV, raising=False)
    monkeypatch.setattr(balance, "_share", None)
    monkeypatch.setattr(os, "getppid", lambda: 4_000_000_000)  # a counts file no server has
    for protocol in (h11_impl.H11Protocol, httptools_impl.HttpToolsProtocol):  # put back after the test
        for name in ("connection_made", "connection_lost"):
            monkeypatch.setattr(protocol, name, getattr(protocol, name))
        monkeypatch.setattr(protocol, "bindcnn_counted", False, raising=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    path = balance.slots_path(4_000_000_000, sock.getsockname()[1])
    try:
        share = balance.install(2, ["--fd", str(sock.fileno()), "--worker-id", "2"])
        assert share is balance._share and share.index == 1 and os.path.exists(path)
        assert httptools_impl.HttpToolsProtocol.bindcnn_counted and h11_impl.H11Protocol.bindcnn_counted
        calls = []

        class Protocol:
            def connection_made(self, transport):
                calls.append("made")

            def connection_lost(self, exc):
                calls.append("lost")

        balance._count(Protocol)
        balance._count(Protocol)  # twice: wrapped once
        Protocol().connection_made(None)
        assert calls == ["made"] and share.counts[1] == 1
        Protocol().connection_lost(None)
        assert calls == ["made", "lost"] and share.counts[1] == 0
    finally:
        sock.close()
        if os.path.exists(path):
            os.unlink(path)


def _answer_headers(share) -> list[tuple[bytes, bytes]]:
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    sent = []

    async def send(message):
        sent.append(message)

    balance._share = share
    try:
        asyncio.run(balance.ConnectionBalance(app)({"type": "http"}, None, send))
    finally:
        balance._share = None
    return sent[0]["headers"]


def test_the_middleware_adds_connection_close_only_over_the_share(two):
    a, b = two
    a.opened()
    b.opened()
    assert _answer_headers(a) == [(b"content-length", b"0")]
    a.opened()
    a.opened()
    assert _answer_headers(a) == [(b"content-length", b"0"), balance.CLOSE]


def test_a_clients_four_connections_end_even_on_a_real_two_worker_server(trained):
    from serving.service.launch import Server

    with Server(env={"BINDCNN_MODEL": trained["tag"], "BINDCNN_WORKERS": "2"}) as srv:
        host, port = srv.url.split("//")[1].split(":")
        conns = [http.client.HTTPConnection(host, int(port), timeout=30) for _ in range(4)]
        for conn in conns:
            conn.connect()
        closes = 0
        for _ in range(12):  # http.client opens a new connection after an answer that closed the last
            pids = []
            for conn in conns:
                conn.request("GET", "/model")
                answer = conn.getresponse()
                assert answer.status == 200
                pids.append(json.loads(answer.read())["worker_pid"])
                closes += answer.getheader("connection") == "close"
        path = balance.slots_path(srv.proc.pid, int(port))
        with open(path, "rb") as fh:  # read the server's file without taking a slot
            counts = [int.from_bytes(fh.read(4), "little", signed=True) for _ in range(2)]
        placed = sorted(pids.count(pid) for pid in set(pids))
        for conn in conns:
            conn.close()
    assert placed == [2, 2], (placed, closes)  # the last round: 2 connections on each worker
    assert sorted(counts) == [2, 2]
    assert not os.path.exists(path)  # removed when the server stopped


def test_without_a_writable_folder_the_worker_serves_unbalanced(monkeypatch, tmp_path):
    monkeypatch.delenv(balance.ENV, raising=False)
    monkeypatch.setattr(balance, "_share", None)
    monkeypatch.setattr(balance, "slots_path", lambda pid, port: str(tmp_path / "missing" / "counts"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        assert balance.install(2, ["--fd", str(sock.fileno()), "--worker-id", "1"]) is None
    finally:
        sock.close()


def test_arm_removes_the_counts_files_of_servers_that_are_gone(monkeypatch, tmp_path):
    import subprocess
    import sys

    monkeypatch.delenv(balance.ENV, raising=False)
    monkeypatch.setattr(balance, "slots_folder", lambda: str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["bentoml", "serve"])
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{balance.PREFIX}{gone.stdout.strip()}-3000"
    alive = tmp_path / f"{balance.PREFIX}{os.getppid()}-3000"
    for path in (dead, alive):
        path.write_bytes(b"\0" * 16)
    registered = []
    monkeypatch.setattr(balance.atexit, "register", registered.append)
    balance.arm()
    assert not dead.exists() and alive.exists()
    mine = tmp_path / f"{balance.PREFIX}{os.getpid()}-3000"
    mine.write_bytes(b"\0" * 16)
    registered[0]()  # at exit: this server's own files go
    assert not mine.exists() and alive.exists()
