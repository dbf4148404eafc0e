"""The one command line, `bindcnn <command>` (also `python -m serving`): the serving commands (score, scan, variants,
mutagenesis, tune, serve) and, where training's extra is installed, the training commands of training/cli.py. In
the predictor image (no TensorFlow, no training/) a training command says which extra to install and exits 2.
Heavy imports wait until the arguments are parsed; exit codes: serving/cli/parsers.py.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from serving.cli.parsers import (EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REJECTS, EXIT_USAGE,
                                 INSTALL_TRAIN, TRAINING_COMMANDS, add_commands)

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_REJECTS", "EXIT_USAGE",
           "add_commands", "main", "run", "training_installed"]


def training_installed() -> bool:
    """True where the training commands can run: TensorFlow and the training package are importable."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "training"))
    except (ImportError, ValueError):  # a module set to None in sys.modules (how an import is blocked)
        return False


def _training_cli():
    """training.cli, the training commands' parsers and runner; imported only here, and only when installed
    (serving never imports training otherwise: tests/test_layout.py)."""
    import training.cli

    return training.cli


def build_parser(with_training: bool = True) -> argparse.ArgumentParser:
    """Every command: the serving ones, then the training ones (or, where not installed or not asked for, their
    names: importing training's parsers costs a serving command ~0.1 s of start-up, h5py and friends)."""
    parser = argparse.ArgumentParser(prog="bindcnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_commands(sub)
    if with_training and training_installed():
        _training_cli().add_commands(sub)
    else:
        for name in TRAINING_COMMANDS:
            sub.add_parser(name, help=f"a training command: needs {INSTALL_TRAIN}", add_help=False)
    return parser


def make_predictor(args):
    """The predictor a command runs on: a service (--url) or ONNX Runtime in this process."""
    if args.url:
        from serving.client import HttpPredictor

        return HttpPredictor(args.url, batch_size=args.batch_size, workers=args.workers, retries=args.retries,
                             timeout=args.timeout)
    from serving.predictor import Predictor

    if len(args.models) == 1:
        return Predictor(args.model, device=args.device, threads=args.threads)
    from serving.model_set import ModelSet, model_names

    predictors = []
    try:
        for model in args.models:
            predictors.append(Predictor(model, device=args.device, threads=args.threads))
        return ModelSet(model_names(predictors, args.models), predictors)
    except BaseException:
        for p in predictors:
            p.close()
        raise


MULTI_MODEL_COMMANDS = ("score", "scan", "variants")  # the commands that take --model more than once (issue 26.3)


def split_models(args) -> None:
    """--model given N times -> args.models (the list) and args.model (the first: what one-model code reads).
    Raises ValueError where the command, or the form of it, takes one model."""
    given = getattr(args, "model", None)
    if not isinstance(given, list) and given is not None:
        return
    from serving.cli.parsers import DEFAULT_MODEL_DIR

    args.models = given or [DEFAULT_MODEL_DIR]
    args.model = args.models[0]
    if len(args.models) > 1:
        if args.command not in MULTI_MODEL_COMMANDS:
            raise ValueError(f"`bindcnn {args.command}` takes one --model; several models in one pass: bindcnn "
                             "score --model A --model B INPUT")
        if args.url:
            raise ValueError("several --model arguments score in this process (--local); a service's models are "
                             "chosen per request (see docs/factors.md)")
        if getattr(args, "engine", "local") != "local":
            raise ValueError("several --model arguments run here (--engine local) for now; give one model for "
                             "--engine ray")


def run(args) -> int:
    """Run a parsed serving command; returns its exit code (documented in each command's --help). A closed
    stdout (BrokenPipeError) is left to main()."""
    from serving.artifact import ArtifactError
    from serving.dna import SequenceError
    from serving.fasta import FastaError

    if args.command == "serve":
        from serving.cli.serve import cmd_serve

        return cmd_serve(args)
    if args.command == "models":
        from serving.cli.models import cmd_models

        return cmd_models(args)
    if args.command == "tune":
        from serving.tuning import cmd_tune

        try:
            return cmd_tune(args)
        except (ArtifactError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        split_models(args)
        if args.command == "variants":  # --all-snvs refuses what it cannot do before a model loads
            from serving.scoring.all_snvs import check_args

            check_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for name in ("input", "fasta", "variants", "genome", "regions", "vcf"):
        path = getattr(args, name, None)
        if path and path != "-" and not Path(path).is_file():
            print(f"error: {path}: no such file", file=sys.stderr)
            return EXIT_USAGE
    if getattr(args, "engine", "local") == "ray":
        from serving.scoring.distributed import check_args

        try:
            check_args(args)  # Ray installed, a --genome form, no --url: before a model loads
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        predictor = make_predictor(args)
    except (ArtifactError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the service cannot be reached or answers nonsense
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return args.handler(args, predictor)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise
    except (FastaError, SequenceError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        close = getattr(predictor, "close", None)
        if close is not None:
            close()


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in TRAINING_COMMANDS and not training_installed():
        print(f"error: `bindcnn {argv[0]}` is a training command, not installed here (this is the predictor "
              f"install, without TensorFlow). Install it with: {INSTALL_TRAIN}", file=sys.stderr)
        return EXIT_USAGE
    serving_command = bool(argv) and argv[0] not in TRAINING_COMMANDS and not argv[0].startswith("-")
    args = build_parser(with_training=not serving_command).parse_args(argv)
    if args.command in TRAINING_COMMANDS:
        return _training_cli().run(args)
    return run(args)


def main(argv: list[str] | None = None) -> int:
    """`bindcnn` and `python -m serving`: parse, run, return the exit code. When a reader closes stdout early
    (`| head`), the rest of the output is dropped without a traceback and the code is EXIT_BROKEN_PIPE (the
    recipe of Python's signal documentation, "Note on SIGPIPE")."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before a training or explaining command imports TF
    try:
        code = _dispatch(sys.argv[1:] if argv is None else list(argv))
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        try:  # later writes (and the interpreter's final flush) go nowhere instead of raising again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return EXIT_BROKEN_PIPE
