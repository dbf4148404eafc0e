"""The serving side's command line: score, scan, variants, mutagenesis and serve (`bindcnn <command> --help`;
`python -m serving <command>` and `bindcnn-serve` too). Heavy imports wait until the arguments are parsed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serving.cli.parsers import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REJECTS, EXIT_USAGE, add_commands

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_REJECTS", "EXIT_USAGE", "add_commands", "main",
           "run"]


def make_predictor(args):
    """The predictor a command runs on: a service (--url) or ONNX Runtime in this process."""
    if args.url:
        from serving.client import HttpPredictor

        return HttpPredictor(args.url, batch_size=args.batch_size, workers=args.workers, retries=args.retries,
                             timeout=args.timeout)
    from serving.predictor import Predictor

    return Predictor(args.model, device=args.device, threads=args.threads)


def run(args) -> int:
    """Run a parsed serving command; returns its exit code (documented in each command's --help)."""
    from serving.artifact import ArtifactError
    from serving.dna import SequenceError
    from serving.fasta import FastaError

    if args.command == "serve":
        from serving.cli.serve import cmd_serve

        return cmd_serve(args)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_commands(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return run(parser.parse_args(argv))
