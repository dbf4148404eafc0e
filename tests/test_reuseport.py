"""serving.service.reuseport: the parent binds with SO_REUSEPORT, workers after the first listen on sockets of their
own at the same address, the kernel then spreads connections over them, and a real 2-worker server answers
keep-alive clients from both workers (before: all 32 benchmark clients were seen on one)."""
from __future__ import annotations

import http.client
import json
import os
import socket

import pytest

from serving.service import reuseport


def listening(reuse: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuse:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def test_arm_binds_circus_sockets_with_reuseport():
    from circus.sockets import CircusSocket

    reuseport.arm()
    reuseport.arm()  # twice: still one wrapper
    sock = CircusSocket(name="t", host="127.0.0.1", port=0)
    try:
        sock.bind_and_listen()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        sock.close()


@pytest.mark.parametrize("argv", [[], ["--fd", "7"], ["--fd", "7", "--worker-id", "1"], ["--worker-id", "2"]])
def test_adopt_leaves_the_first_worker_and_odd_commands_alone(argv):
    assert reuseport.adopt(argv) is False


def test_adopt_keeps_sharing_an_unarmed_socket():
    shared = listening(reuse=False)
    fd = os.dup(shared.fileno())
    try:
        before = os.fstat(fd).st_ino
        assert reuseport.adopt(["--fd", str(fd), "--worker-id", "2"]) is False
        assert os.fstat(fd).st_ino == before
    finally:
        os.close(fd)
        shared.close()


def test_adopt_gives_a_worker_its_own_socket_and_the_kernel_spreads_connections(monkeypatch):
    monkeypatch.delenv(reuseport.ENV, raising=False)
    shared = listening(reuse=True)  # the parent's, armed
    fd = os.dup(shared.fileno())  # what worker 2 inherits
    try:
        assert reuseport.adopt(["--fd", str(fd), "--worker-id", "2", "--backlog", "64"]) is True
        own = socket.socket(fileno=os.dup(fd))
        assert os.fstat(fd).st_ino != os.fstat(shared.fileno()).st_ino  # another socket now
        assert own.getsockname() == shared.getsockname()
        clients = [socket.create_connection(shared.getsockname()) for _ in range(32)]
        got = {}
        for name, sock in (("shared", shared), ("own", own)):
            sock.setblocking(False)
            got[name] = 0
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                got[name] += 1
        assert got["shared"] + got["own"] == 32 and got["shared"] > 0 and got["own"] > 0  # 2**-31 to fail
        for c in clients:
            c.close()
        own.close()
    finally:
        os.close(fd)
        shared.close()


def test_keep_alive_clients_reach_both_workers(trained):
    from serving.service.launch import Server

    with Server(env={"BINDCNN_MODEL": trained["tag"], "BINDCNN_WORKERS": "2"}) as srv:
        host, port = srv.url.split("//")[1].split(":")
        conns = [http.client.HTTPConnection(host, int(port), timeout=30) for _ in range(16)]
        for conn in conns:  # a burst of connections first, as many clients starting together make
            conn.connect()
        pids = set()
        for conn in conns:  # each connection stays with the worker that accepted it
            conn.request("GET", "/model")
            pids.add(json.loads(conn.getresponse().read())["worker_pid"])
        for conn in conns:
            conn.close()
        assert len(pids) == 2, pids  # 2**-15 by chance; BINDCNN_REUSEPORT=0: 3 runs of 3
