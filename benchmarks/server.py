"""Starting the real `bentoml serve` for a benchmark (serving.service.launch.Server, private BentoML home) and
reading its workers' roles, CPU and memory from /proc: shared by the suite, bench_scoring and load."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path


def start_server(model: Path, home: Path, env: dict[str, str] | None = None, timeout: float = 180):
    """Register the exported `model` folder in a private BentoML home and start `bentoml serve` on a free
    loopback port; env: extra variables for the server. Returns (server, seconds from launch to /readyz 200)."""
    if os.environ.get("BENTOML_HOME") != str(home):
        shutil.rmtree(home, ignore_errors=True)
    os.environ["BENTOML_HOME"] = str(home)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    from serving.service.launch import Server
    from serving.store import register

    tag = register(model)
    server = Server(env={"BINDCNN_MODEL": tag, "BENTOML_HOME": str(home), **(env or {})})
    t0 = time.perf_counter()
    server.start(timeout=timeout)
    return server, time.perf_counter() - t0


def worker_roles(server_pid: int) -> dict[int, str]:
    """pid -> role of every process of a `bentoml serve` (main, predictor, explainer, other)."""
    import psutil

    from serving.service.launch import process_tree

    out = {}
    for pid in process_tree(server_pid):
        try:
            cmd = " ".join(psutil.Process(pid).cmdline())
        except psutil.Error:
            continue
        if "--service-name bindcnn-explainer" in cmd:
            out[pid] = "explainer"
        elif "--service-name bindcnn" in cmd:
            out[pid] = "predictor"
        elif pid == server_pid:
            out[pid] = "bentoml serve (main)"
        else:
            out[pid] = "other: " + cmd[:60]
    return out


def predictor_workers(server) -> list[int]:
    """PIDs of the server's `bindcnn` (predictor) worker processes (not the explainer's)."""
    return [pid for pid, role in worker_roles(server.proc.pid).items() if role == "predictor"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    try:
        return int(re.search(r"VmRSS:\s*(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024
    except (OSError, AttributeError):
        return float("nan")
