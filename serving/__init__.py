"""bindcnn serving side: encoding, ONNX Runtime predictor, BentoML services, the scoring commands, and the Python
door for notebooks (`from serving import load_model`, serving/model.py; imported only when used)."""
import os

# ONNX Runtime >= 1.29 writes a device id into ~/.cache/Microsoft/DeveloperTools at import and sends telemetry on
# Linux; its public opt-out is this variable, read at import. Set here, before any module of ours imports it, so
# nothing of ours writes into $HOME (a user's own setting wins).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def load_model(model, device: str = "auto"):
    """A model folder or a BentoML store tag -> serving.model.Model (see its docstring)."""
    from serving.model import load_model as load

    return load(model, device)
