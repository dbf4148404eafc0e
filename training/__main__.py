"""`python -m training <command>`: the training commands (see training.cli)."""
import sys

from training.cli import training_main

if __name__ == "__main__":
    sys.exit(training_main())
