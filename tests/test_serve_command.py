"""`bindcnn serve` says where it serves only once the service takes requests: first what it is waiting for, then
the URL when /readyz answers 200 (a new user's first request then never meets a refused connection); `--model`
given twice serves both models side by side."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from serving.service.launch import end_processes, free_port, process_tree

BINDCNN = Path(sys.executable).parent / "bindcnn"


def test_serve_prints_the_url_when_the_service_is_ready(trained, rest_model, bentoml_home):
    """Two --model: both served side by side (the first is the default), named in the ready line and /models."""
    port = free_port()
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BINDCNN_WORKERS": "1"}
    proc = subprocess.Popen([str(BINDCNN), "serve", "--model", trained["tag"], "--model", str(rest_model["dir"]),
                             "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line.strip())
            if line.startswith("serving "):
                # the moment the URL is printed, the service answers
                assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
                assert f"http://127.0.0.1:{port}" in line and "ready" in line
                assert trained["tag"] in line and rest_model["meta"]["name"] in line
                cards = httpx.get(f"http://127.0.0.1:{port}/models", timeout=5).json()
                assert [c["name"] for c in cards] == [trained["meta"]["name"], rest_model["meta"]["name"]]
                break
        else:
            raise AssertionError(f"no 'serving ... ready' line in 120 s: {seen}")
        starting = [i for i, s in enumerate(seen) if s.startswith("starting ")]
        assert starting and "waiting for /readyz" in seen[starting[0]], seen
        assert seen[-1].startswith("serving "), seen
    finally:
        end_processes(process_tree(proc.pid), grace=10)
        proc.wait(10)
