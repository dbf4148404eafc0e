"""bindcnn training side: data, model, training, export and saliency (TensorFlow lives here)."""
import os


def quiet_tensorflow() -> None:
    """Call before TensorFlow is imported: keeps its start-up noise off the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
