"""`python -m serving <command>`: the serving side's commands (see serving.cli)."""
import os

from serving.cli import main
from serving.quick_exit import run_program

if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    run_program(main)
