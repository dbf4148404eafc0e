"""The client's plain-HTTP path (serving/http_connection.py) against a real local HTTP/1.1 server: kept-alive
connections, a connection the server dropped, `Connection: close`, path prefixes, and when it is not used (proxy
from the environment, https). Also serving/scores_wire.py, the binary form of the scores."""
from __future__ import annotations

import http.server
import threading

import numpy as np
import pytest

from serving.http_connection import Connections, direct_http
from serving.scores_wire import accepts_binary, scores_from_bytes, scores_to_bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise
    seen: list[tuple[str, int, int]] = []  # (path, this connection's request number, body size)
    drop_after_first = False  # close each connection silently after its first answer (a server's idle timeout)

    def setup(self):
        super().setup()
        self.served = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        self.served += 1
        self.seen.append((self.path, self.served, len(body)))
        answer = body[::-1]
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream; x=1")
        self.send_header("content-length", str(len(answer)))
        if self.headers.get("x-close"):
            self.send_header("connection", "close")
        # Decided before the answer goes out: once the client has it, the test may already flip the flag.
        drop = self.drop_after_first
        self.end_headers()
        self.wfile.write(answer)
        if drop:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    _Handler.seen, _Handler.drop_after_first = [], False
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_requests_share_a_kept_alive_connection_under_the_path_prefix(web):
    conns = Connections(f"http://127.0.0.1:{web.server_address[1]}/api/", timeout=10)
    answers = [conns.post("/predict_codes?x=1", bytes([i, 1, 2]), {}) for i in range(3)]
    assert [a.body for a in answers] == [bytes([2, 1, i]) for i in range(3)]
    assert {(a.status, a.content_type) for a in answers} == {(200, "application/octet-stream")}
    assert _Handler.seen == [("/api/predict_codes?x=1", n, 3) for n in (1, 2, 3)]  # one connection, 3 requests
    conns.close()


def test_a_dropped_connection_is_sent_again_and_connection_close_is_honoured(web):
    conns = Connections(f"http://127.0.0.1:{web.server_address[1]}", timeout=10)
    _Handler.drop_after_first = True
    assert [conns.post("/a", b"xy", {}).body for _ in range(3)] == [b"yx"] * 3
    assert [n for _, n, _ in _Handler.seen] == [1, 1, 1]  # each on a new connection, none lost
    _Handler.drop_after_first = False
    conns.post("/b", b"1", {"x-close": "1"})
    conns.post("/b", b"2", {})
    assert [n for p, n, _ in _Handler.seen if p == "/b"] == [1, 1]  # reconnected after `Connection: close`


def test_an_unreachable_server_raises_a_transport_error():
    from serving.http_connection import TRANSPORT_ERRORS
    from serving.service.launch import free_port

    with pytest.raises(TRANSPORT_ERRORS):
        Connections(f"http://127.0.0.1:{free_port()}", timeout=5).post("/x", b"", {})


def test_direct_only_for_plain_http_without_a_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert direct_http("http://10.0.0.5:3000")
    assert not direct_http("https://bindcnn.example.org")  # TLS, certificates: httpx's business
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.org:3128")
    assert not direct_http("http://10.0.0.5:3000")
    monkeypatch.setenv("NO_PROXY", "10.0.0.5")
    assert direct_http("http://10.0.0.5:3000")


def test_http_predictor_goes_through_httpx_where_a_proxy_applies(monkeypatch):
    from serving.client import HttpPredictor

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.org:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with HttpPredictor("http://10.0.0.5:3000", length=200, alphabet="ACGT") as remote:
        assert remote.direct is None


def test_scores_round_trip_as_float32_bytes():
    prob = np.array([0.25, 1e-30, np.nan], np.float32)
    logit = np.array([-1.0986123, -69.0776, np.nan], np.float32)
    data = scores_to_bytes(prob, logit)
    assert len(data) == 24 and data[:4] == np.float32(0.25).tobytes()  # little-endian, probabilities first
    back = scores_from_bytes(data, 3)
    np.testing.assert_array_equal(back[0], prob)
    np.testing.assert_array_equal(back[1], logit)
    with pytest.raises(ValueError, match="24 bytes, got 23"):
        scores_from_bytes(data[:-1], 3)


@pytest.mark.parametrize("accept, binary", [
    ("application/octet-stream", True), ("application/json, application/octet-stream;q=0.9", True),
    ("Application/Octet-Stream", True), ("application/octet-stream;q=0", False), ("*/*", False),
    ("application/json", False), ("", False)])
def test_accept_header(accept, binary):
    assert accepts_binary(accept) is binary
