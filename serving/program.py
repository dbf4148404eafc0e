"""How the command-line programs start and end: numpy's BLAS kept to one thread unless the user says otherwise (ONNX
Runtime and TensorFlow run their own thread pools; OpenBLAS's idle threads spun ~0.1 CPU-s at every start, into
the model's first batches), and an exit that runs handlers and flushes output, then skips tearing modules down
(~20 ms with ONNX Runtime loaded). Nothing here imports numpy: the environment must be set before numpy loads.

Entry points: `python -m serving` and `bindcnn-serve` (bindcnn_serve); training/program.py has the others."""
from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Callable, NoReturn

def start_program() -> None:
    """Call before anything imports numpy: OPENBLAS_NUM_THREADS=1 unless set (numpy's OpenBLAS; the heavy math runs
    in ONNX Runtime's and TensorFlow's own thread pools, which it does not touch)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def bindcnn_serve() -> NoReturn:
    """`bindcnn-serve` and `python -m serving`: the serving commands."""
    start_program()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from serving.cli import main

    run_program(main)


def run_program(main: Callable[[], int | None]) -> NoReturn:
    """Run main() and exit with its code (a SystemExit's code too, e.g. from --help); an uncaught exception
    takes Python's own path (traceback, exit 1)."""
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"), as Python handles it
        print(code, file=sys.stderr)
        code = 1
    quick_exit(code)


def quick_exit(code: int) -> NoReturn:
    """What interpreter shutdown does that matters (join non-daemon threads, atexit handlers, flush stdout and
    stderr), then os._exit(code)."""
    shutdown = getattr(threading, "_shutdown", None)  # joins non-daemon threads (CPython's own exit does this)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or stream: nothing left to show there
            code = code or 120  # Python's own exit status when flushing stdout fails
    os._exit(code)
