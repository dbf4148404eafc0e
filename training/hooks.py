"""Named points in training and export where a test can interrupt the run deterministically: with
BINDCNN_INTERRUPT_AT=<name> the process sends itself SIGINT there (as Ctrl-C would), whatever the machine's speed."""
from __future__ import annotations

import os
import signal

INTERRUPT_ENV = "BINDCNN_INTERRUPT_AT"
POINTS = ("epoch-1", "export-staging")  # after the first epoch; once the export's staging folder exists


def interrupt_point(name: str) -> None:
    """SIGINT to this process when $BINDCNN_INTERRUPT_AT names this point (a no-op otherwise)."""
    if os.environ.get(INTERRUPT_ENV) == name:
        os.kill(os.getpid(), signal.SIGINT)
