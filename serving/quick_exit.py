"""How the command-line programs end: exit handlers run and output is flushed as usual, then the process leaves
without tearing its modules down (with ONNX Runtime loaded that teardown took ~25 ms of every command).

Used by `bindcnn`, `python -m serving` and `python -m training`; main(argv) called in-process returns as before."""
from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Callable, NoReturn


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
