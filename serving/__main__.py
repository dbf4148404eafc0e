"""`python -m serving <command>`: the serving side's commands (see serving.cli)."""
from serving.program import bindcnn_serve

if __name__ == "__main__":
    bindcnn_serve()
