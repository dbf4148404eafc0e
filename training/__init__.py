"""bindcnn training side: data, model, training, export and saliency (TensorFlow lives here)."""
import os
import sys


def quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up noise (C++ log lines, CUDA probing) kept off the terminal.

    Sets TF_CPP_MIN_LOG_LEVEL=3 and silences file descriptor 2 during the import only; errors raised
    by the import itself still propagate."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
