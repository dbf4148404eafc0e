"""Start and stop a real `bentoml serve` of serving.service on a free loopback port, for tests.

Server(env).start() waits for /readyz; stop() kills the whole process group (BentoML's workers too).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENTOML = Path(sys.executable).parent / "bentoml"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `bentoml serve` subprocess; url is http://127.0.0.1:<port>; log holds its stdout+stderr."""

    def __init__(self, env: dict[str, str] | None = None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "BENTOML_DO_NOT_TRACK": "true", **(env or {})}
        self.log = Path(tempfile.mkstemp(prefix="bindcnn-serve-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    @classmethod
    def for_model(cls, tag: str, **limits: int) -> "Server":
        """A server of model `tag` with request limits, e.g. max_sequences=300 -> BINDCNN_MAX_SEQUENCES."""
        return cls(env={"BINDCNN_MODEL": tag, **{f"BINDCNN_{k.upper()}": str(v) for k, v in limits.items()}})

    def start(self, timeout: float = 120.0) -> "Server":
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(
                [str(BENTOML), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env=self.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bentoml serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"bentoml serve not ready after {timeout} s:\n{self.output()}")

    def wait_exit(self, timeout: float = 60.0) -> int | None:
        """Run until the server exits by itself (e.g. a start-up failure); its exit code or None."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        try:  # workers left behind by a main process that exited first
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
