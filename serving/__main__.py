"""`python -m serving <command>`: the serving side's commands (see serving.cli)."""
import os
import sys

from serving.cli import main

if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
