"""Where serving/calibration.py keeps its choice: a JSON file per (CPU model, ONNX Runtime version, model files,
threads), next to the model in <model>/calibration/, or in the user's cache folder when the model folder is
read-only (BINDCNN_CACHE_DIR, else $XDG_CACHE_HOME/bindcnn, else ~/.cache/bindcnn). The fingerprint's probe batch
is kept there too: making it loads numpy.random, ~10 ms of every start."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

from serving.artifact import ONNX_FILE

VERSION = 3  # bump when candidates or the record change: older records are then ignored
FOLDER = "calibration"
FLAGS = ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "avx2", "fma", "avx", "sse4_2", "neon", "asimd")


def cpu_model() -> tuple[str, list[str]]:
    """('AMD EPYC 9B14', ['avx2', 'avx512f', ...]) from /proc/cpuinfo (platform.processor() elsewhere)."""
    import platform

    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    name = re.search(r"^(?:model name|Model|cpu model)\s*:\s*(.*)$", info, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", info, re.M)
    have = set(flags.group(1).split()) if flags else set()
    return (name.group(1).strip() if name else platform.machine()), sorted(f for f in FLAGS if f in have)


def cache_key(model_dir: str | os.PathLike, metadata: dict[str, Any], threads: int) -> dict[str, Any]:
    """What a cached choice is valid for: the CPU (model, vector extensions, usable CPUs), ONNX Runtime's
    version, the requested threads and the sha256 of every ONNX file the candidates read."""
    import onnxruntime as ort

    from serving.calibration import physical_cores

    files = metadata.get("files") or {}
    graphs = [ONNX_FILE] + sorted(v["file"] for v in (metadata.get("onnx_variants") or {}).values())
    model, flags = cpu_model()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"version": VERSION, "cpu": model, "flags": flags, "cpus": cpus, "cores": physical_cores(),
            "threads": threads, "onnxruntime": ort.__version__,
            "files": {f: files.get(f, "unknown") for f in graphs}}


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def user_cache_dir() -> Path:
    root = os.environ.get("BINDCNN_CACHE_DIR")
    if root:
        return Path(root) / FOLDER
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bindcnn" / FOLDER


def writable(folder: Path) -> bool:
    """True when files can be created in folder (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
        return True
    except OSError:
        return False


def cache_path(model_dir: str | os.PathLike, key: dict[str, Any]) -> Path | None:
    """<model>/calibration/<digest>.json, or the user cache folder's <model name>-<digest>.json when the model
    folder is read-only; None when neither can be written (the choice is then made at every start)."""
    name = f"{_digest(key)}.json"
    here = Path(model_dir) / FOLDER
    if writable(here):
        return here / name
    elsewhere = user_cache_dir()
    return elsewhere / f"{Path(model_dir).name}-{name}" if writable(elsewhere) else None


@contextlib.contextmanager
def locked(path: Path | None) -> Iterator[None]:
    """Hold an exclusive lock beside path while the block runs (no-op where locks are unavailable)."""
    if path is None:
        yield
        return
    try:
        import fcntl

        fh = open(path.with_suffix(".lock"), "a")
    except (ImportError, OSError):
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load(path: Path | None, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached record for exactly this key, or None (missing, unreadable or made for something else)."""
    if path is None or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("key") == key and "plan" in record else None


def save(path: Path | None, record: dict[str, Any]) -> Path | None:
    """Write record atomically; returns the path, or None when it could not be written."""
    if path is None:
        return None
    try:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, path)
        return path
    except OSError:
        return None


def probe_inputs(model_dir: str | os.PathLike, length: int, fresh: bool = False) -> "np.ndarray":
    """serving.artifact.probe_inputs(length) as saved in the cache folder (made and saved the first time, and
    when fresh or the file is unreadable or of another shape): (FINGERPRINT_N, length, 4) float32."""
    import numpy as np

    from serving.artifact import FINGERPRINT_N, FINGERPRINT_SEED, probe_inputs as make

    name = f"probes-{length}x{FINGERPRINT_N}-{FINGERPRINT_SEED}.npy"
    here = Path(model_dir) / FOLDER
    for path in () if fresh else (here / name, user_cache_dir() / name):
        try:
            x = np.load(path, allow_pickle=False)
            if x.shape == (FINGERPRINT_N, length, 4) and x.dtype == np.float32:
                return x
        except (OSError, ValueError):
            continue
    x = make(length)
    for folder in (here, user_cache_dir()):
        if writable(folder):
            try:
                tmp = folder / f".{name}.{os.getpid()}.tmp"
                with open(tmp, "wb") as fh:
                    np.save(fh, x, allow_pickle=False)
                os.replace(tmp, folder / name)
                break
            except OSError:
                continue
    return x
