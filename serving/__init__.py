"""bindcnn serving side: encoding, ONNX Runtime predictor, BentoML services, the scoring commands, and the Python
door for notebooks (`from serving import load_model`, serving/model.py; imported only when used)."""


def load_model(model, device: str = "auto"):
    """A model folder or a BentoML store tag -> serving.model.Model (see its docstring)."""
    from serving.model import load_model as load

    return load(model, device)
