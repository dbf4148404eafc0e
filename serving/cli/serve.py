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
EXPLAINER_SERVICE = "serving.service.explainer:Explainer"


def cmd_serve(args) -> int:
    from serving.artifact import ArtifactError
    from serving.service import explainer_link
    from serving.service.launch import BENTOML, ROOT, end_processes, process_tree
    from serving.service.workers import WORKERS_ENV
    from serving.store import MODEL_ENV, MODELS_ENV, model_tags, register, resolve

    extra = {}
    if getattr(args, "explainer_only", False) and not explainer_link.installed("tensorflow"):
        print(f"error: --explainer-only needs TensorFlow: {explainer_link.INSTALL_EXPLAIN}", file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "explainer_url", None):
        if not args.explainer_url.startswith(("http://", "https://")):
            print(f"error: --explainer-url {args.explainer_url!r} must start with http:// or https://",
                  file=sys.stderr)
            return EXIT_USAGE
        extra[explainer_link.URL_ENV] = args.explainer_url
    if getattr(args, "workers", None) is not None:
        if args.workers < 1:
            print("error: --workers must be at least 1", file=sys.stderr)
            return EXIT_USAGE
        extra[WORKERS_ENV] = str(args.workers)
    try:
        tags = []
        for tag in args.model or model_tags():
            if Path(tag).is_dir():
                folder, tag = tag, register(tag)
                say(f"registered {folder} as {tag}")
            resolve(tag)
            tags.append(tag)
        names = [t.split(":")[0] for t in tags]
        if len(set(names)) < len(names):
            raise ValueError(f"--model names a model twice ({', '.join(names)}): each served model needs its own name")
    except (ArtifactError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    tag = ", ".join(tags)
    tmp = tempfile.mkdtemp(prefix="bindcnn-serve-")  # the workers' temp files; removed when the server stops
    env = {**os.environ, MODELS_ENV: ",".join(tags), MODEL_ENV: tags[0], "TMPDIR": tmp, **extra,
           "BENTOML_DO_NOT_TRACK": os.environ.get("BENTOML_DO_NOT_TRACK", "true")}
    service = EXPLAINER_SERVICE if getattr(args, "explainer_only", False) else SERVICE
    cmd = [str(BENTOML), "serve", service, "--host", args.host, "--port", str(args.port)]
    what = ("the explainer of " if service == EXPLAINER_SERVICE else "") + tag
    via = f", saliency from {args.explainer_url}" if extra.get(explainer_link.URL_ENV) else ""
    say(f"starting {what}: loading the model in each worker; waiting for /readyz (Ctrl-C stops it)")
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
        if wait_ready(proc, args.host, args.port):
            say(f"serving {what} on http://{args.host}:{args.port}{via}: ready (Ctrl-C stops it)")
        code = proc.wait()
    finally:
        end_processes(process_tree(proc.pid), grace=1.0)  # nothing outlives the command
        shutil.rmtree(tmp, ignore_errors=True)
    return EXIT_OK if stopping else code


def wait_ready(proc: subprocess.Popen, host: str, port: int, poll_s: float = 0.25) -> bool:
    """Poll the server's /readyz until it answers 200 (True) or the server exits (False): the URL is printed only
    when requests are taken. A wildcard host is polled on loopback."""
    import time

    import httpx

    local = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    url = f"http://{'[' + local + ']' if ':' in local else local}:{port}/readyz"
    while proc.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(poll_s)
    return False
