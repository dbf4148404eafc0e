"""Stopping a real server: Ctrl-C (SIGINT to the terminal's process group) or SIGTERM (what Kubernetes sends)
ends `bentoml serve` and every worker within 10 s, port freed, even with a long request in flight and an idle
keep-alive connection open; the project's launcher leaves no process and no temp folder behind."""
from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import psutil
import pytest

from serving.service.launch import Server, port_free

LIMIT_S = 10.0


def _alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _busy(server: Server) -> httpx.Client:
    """An idle keep-alive connection and a long /scan in flight (several seconds of model time)."""
    keep = httpx.Client(base_url=server.url, timeout=60)
    assert keep.get("/readyz").status_code == 200

    def long_scan():
        try:
            httpx.post(f"{server.url}/scan", json={"sequence": "ACGT" * 200_000}, timeout=60)
        except httpx.HTTPError:
            pass  # cut off by the shutdown: expected

    threading.Thread(target=long_scan, daemon=True).start()
    time.sleep(1.0)
    return keep


@pytest.mark.parametrize("how", ["SIGINT to the process group (Ctrl-C)", "SIGTERM to the server"])
def test_signal_stops_server_and_all_workers_within_10_s(trained, how):
    server = Server(env={"BINDCNN_MODEL": trained["tag"], "BINDCNN_MAX_SCAN_WINDOWS": "10000000"}).start()
    try:
        pids = server.workers()
        assert len(pids) >= 3  # the arbiter, the predictor worker, the explainer worker
        keep = _busy(server)
        t0 = time.monotonic()
        if how.startswith("SIGINT"):
            os.killpg(os.getpgid(server.proc.pid), signal.SIGINT)
        else:
            server.proc.send_signal(signal.SIGTERM)
        while _alive(pids) and time.monotonic() - t0 < LIMIT_S + 5:
            time.sleep(0.2)
        took = time.monotonic() - t0
        keep.close()
        assert _alive(pids) == [] and took <= LIMIT_S, f"{_alive(pids)} alive after {took:.1f} s"
        assert port_free(server.port)
        assert "in-flight requests get" in server.output()
    finally:
        server.stop()


def test_launcher_stop_leaves_no_worker_and_no_temp_files(trained):
    server = Server(env={"BINDCNN_MODEL": trained["tag"]}).start()
    pids, folder = server.workers(), server.log.parent
    try:
        httpx.post(f"{server.url}/saliency", json={"sequences": ["ACGT" * 50]}, timeout=60).raise_for_status()
    finally:  # a failed request must not leave the server running past the test
        server.stop()
    assert _alive(pids) == [] and port_free(server.port)
    assert not folder.exists()  # the log and the workers' TMPDIR went with it
    assert "bindcnn" in server.output()  # the output stays readable after stop()
