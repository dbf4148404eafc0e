"""Start and stop a real `bentoml serve` of this service on a free loopback port: used by the tests, the
benchmarks and `bindcnn serve`. stop() ends the server and every worker, even those in their own session.

BentoML's process manager (circus) starts each worker in a session of its own, so a signal to the server's
process group never reaches them: stop() lists the whole process tree first and ends each pid it found.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root, where bentofile.yaml is
BENTOML = Path(sys.executable).parent / "bentoml"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) != 0


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (workers included, whatever their session)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [pid] + [p.pid for p in root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def end_processes(pids: list[int], grace: float = 10.0) -> list[int]:
    """End a process tree listed root first (process_tree): SIGTERM the root and wait up to `grace` s for it
    to stop its workers, then SIGTERM every process still there (the listed ones and any the root started
    since), and SIGKILL what is left after 3 s. Returns the pids that needed SIGKILL."""
    import psutil

    def alive(pid_list):
        out = []
        for pid in pid_list:
            try:
                p = psutil.Process(pid)
                if p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out

    if not pids:
        return []
    root = alive(pids[:1])
    if root:
        late = process_tree(pids[0])
        root[0].send_signal(signal.SIGTERM)
        psutil.wait_procs(root, timeout=grace)
        pids = list(pids) + late
    rest = alive(sorted(set(pids)))
    for p in rest:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, left = psutil.wait_procs(rest, timeout=3)
    for p in left:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=5)
    return [p.pid for p in left]


class Server:
    """A `bentoml serve` subprocess; url is http://127.0.0.1:<port>; output() is its stdout+stderr."""

    def __init__(self, env: dict[str, str] | None = None, port: int | None = None, host: str = "127.0.0.1",
                 args: list[str] | None = None, service: str | None = None):
        self.host, self.port = host, port or free_port()
        self.url = f"http://{host}:{self.port}"
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "BENTOML_DO_NOT_TRACK": "true", **(env or {})}
        self.args, self.service = args or [], service
        self._dir = Path(tempfile.mkdtemp(prefix="bindcnn-serve-"))
        self.log = self._dir / "serve.log"
        # The workers' temp files (BentoML's client folders, uploads) go here and leave with stop(): a worker
        # ended by a signal never runs its own clean-up.
        (self._dir / "tmp").mkdir()
        self.env["TMPDIR"] = str(self._dir / "tmp")
        self._output = ""
        self.proc: subprocess.Popen | None = None
        self.pids: list[int] = []

    @classmethod
    def for_model(cls, tag: str, **limits: int) -> "Server":
        """A server of model `tag` with request limits, e.g. max_sequences=300 -> BINDCNN_MAX_SEQUENCES."""
        return cls(env={"BINDCNN_MODEL": tag, **{f"BINDCNN_{k.upper()}": str(v) for k, v in limits.items()}})

    def command(self) -> list[str]:
        return [str(BENTOML), "serve", *([self.service] if self.service else []),
                "--host", self.host, "--port", str(self.port), *self.args]

    def start(self, timeout: float = 120.0) -> "Server":
        import httpx

        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(self.command(), cwd=ROOT, env=self.env, stdout=fh,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"bentoml serve exited with {self.proc.returncode}:\n{self.output()}")
            self.pids = sorted(set(self.pids) | set(process_tree(self.proc.pid)))
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    self.pids = sorted(set(self.pids) | set(process_tree(self.proc.pid)))
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
        """Everything the server printed (kept after stop() removes its temp folder)."""
        if self.log.exists():
            self._output = self.log.read_text(errors="replace")
        return self._output

    def workers(self) -> list[int]:
        """The server's process tree now (the arbiter first)."""
        return process_tree(self.proc.pid) if self.proc is not None else []

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the server (as Kubernetes or Ctrl-C would), wait up to `grace` s, then end every process it
        started that is still there (pids seen at start and now); remove its temp folder (output() stays)."""
        if self.proc is not None:
            tree = process_tree(self.proc.pid)
            end_processes([self.proc.pid] + sorted((set(self.pids) | set(tree)) - {self.proc.pid}), grace)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed above
                pass
        self.output()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
