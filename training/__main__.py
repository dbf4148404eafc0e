"""`python -m training <command>`: the one command line, as `bindcnn` (serving.cli), kept for scripts."""
import sys

from serving.cli import main

if __name__ == "__main__":
    sys.exit(main())
