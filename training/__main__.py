"""`python -m training <command>`: the training commands (see training.cli)."""
from serving.quick_exit import run_program
from training.cli import training_main

if __name__ == "__main__":
    run_program(training_main)
