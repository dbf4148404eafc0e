"""The `bindcnn` and `bindcnn-train` programs (and `python -m training`): serving/program.py's start and exit
around training/cli.py's mains, which are imported only once the environment is set."""
from __future__ import annotations

from typing import NoReturn

from serving.program import run_program, start_program


def bindcnn() -> NoReturn:
    """`bindcnn`: every command of the project."""
    start_program()
    from training.cli import main

    run_program(main)


def bindcnn_train() -> NoReturn:
    """`bindcnn-train` and `python -m training`: the training commands."""
    start_program()
    from training.cli import training_main

    run_program(training_main)
