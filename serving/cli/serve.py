"""The serve command: `bentoml serve` of this service in the foreground, stopped with all its workers on
Ctrl-C or SIGTERM (BentoML starts each worker in its own session, out of reach of the terminal's signal)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import sys
from pathlib import Path

from serving.cli.parsers import EXIT_OK, EXIT_USAGE
from serving.console import say

SERVICE = "serving.service.app:BindCNN"


def cmd_serve(args) -> int:
    from serving.artifact import ArtifactError
    from serving.service.launch import BENTOML, ROOT, end_processes, process_tree
    from serving.store import MODEL_ENV, model_tag, register, resolve

    tag = args.model or model_tag()
    try:
        if Path(tag).is_dir():
            tag = register(tag)
            say(f"registered {args.model} as {tag}")
        resolve(tag)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    tmp = tempfile.mkdtemp(prefix="bindcnn-serve-")  # the workers' temp files; removed when the server stops
    env = {**os.environ, MODEL_ENV: tag, "TMPDIR": tmp,
           "BENTOML_DO_NOT_TRACK": os.environ.get("BENTOML_DO_NOT_TRACK", "true")}
    cmd = [str(BENTOML), "serve", SERVICE, "--host", args.host, "--port", str(args.port)]
    say(f"serving {tag} on http://{args.host}:{args.port} (Ctrl-C stops it)")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    stopping = []

    def stop(signum, frame):  # first signal: end the server and its workers; the wait below returns
        if not stopping:
            stopping.append(signum)
            say(f"stopping ({signal.Signals(signum).name}): the server and its workers")
            end_processes(process_tree(proc.pid), grace=5.0)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    try:
        code = proc.wait()
    finally:
        end_processes(process_tree(proc.pid), grace=1.0)  # nothing outlives the command
        shutil.rmtree(tmp, ignore_errors=True)
    return EXIT_OK if stopping else code
