"""`python -m serving <command>`: the one command line, as `bindcnn` (see serving.cli)."""
import sys

from serving.cli import main

if __name__ == "__main__":
    sys.exit(main())
