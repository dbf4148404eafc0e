"""`python -m training <command>`: the training commands (see training.cli)."""
from training.program import bindcnn_train

if __name__ == "__main__":
    bindcnn_train()
