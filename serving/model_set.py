"""Several models scored on the same input in one command (`score --model A --model B`): the input is read,
checked and encoded once, then every model scores the same codes. A ModelSet looks like one predictor whose
answers have a column per model, and names the output columns (`probability_<name>`, `logit_<name>`)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


class ModelSet:
    """Named predictors that share their input: predict_codes(codes (N, L) uint8) / predict_onehot(x (N, L, 4))
    -> {"probability": (N, M), "logit": (N, M)} float32, column j from predictors[j]. All must take the same
    sequence length and alphabet (a ValueError says which differ)."""

    prefers_strings = False

    def __init__(self, names: Sequence[str], predictors: Sequence[Any]):
        if len(names) != len(predictors) or len(predictors) < 2:
            raise ValueError("a ModelSet holds two or more named predictors")
        seen = [n for i, n in enumerate(names) if n in names[:i]]
        if seen:
            raise ValueError(f"two --model arguments are both named {seen[0]!r}: the output columns would clash "
                             "(export one under another name: bindcnn export --out models/OTHER)")
        lengths = {n: p.length for n, p in zip(names, predictors)}
        if len(set(lengths.values())) != 1:
            raise ValueError("models scored together must take the same sequence length: "
                             + ", ".join(f"{n} takes {k} nt" for n, k in lengths.items())
                             + " (score them in separate commands)")
        alphabets = {p.alphabet for p in predictors}
        if len(alphabets) != 1:
            raise ValueError(f"models scored together must share one alphabet, got {sorted(alphabets)}")
        self.names = list(names)
        self.predictors = list(predictors)
        self.length: int = predictors[0].length
        self.alphabet: str = predictors[0].alphabet
        if all(hasattr(p, "predict_codes") for p in predictors):
            self.predict_codes = self._predict_codes

    @property
    def device(self) -> str:
        return self.predictors[0].device if hasattr(self.predictors[0], "device") else "cpu"

    @property
    def remote(self) -> bool:
        return any(getattr(p, "remote", False) for p in self.predictors)

    def _stack(self, outs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.stack([np.asarray(o[k], np.float32).reshape(-1) for o in outs], axis=1)
                for k in ("probability", "logit")}

    def _predict_codes(self, codes: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        return self._stack([p.predict_codes(codes, reverse_complement_average=reverse_complement_average)
                            for p in self.predictors])

    def predict_onehot(self, x: np.ndarray, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        return self._stack([p.predict_onehot(x, reverse_complement_average=reverse_complement_average)
                            for p in self.predictors])

    def predict_sequences(self, sequences: Sequence[str], reverse_complement_average: bool = False
                          ) -> dict[str, np.ndarray]:
        return self._stack([p.predict_sequences(sequences, reverse_complement_average=reverse_complement_average)
                            for p in self.predictors])

    def columns(self, *fields: str) -> list[str]:
        """Output column names, model by model: columns("probability", "logit") ->
        [probability_a, logit_a, probability_b, logit_b]."""
        return [f"{f}_{n}" for n in self.names for f in fields]

    def close(self) -> None:
        for p in self.predictors:
            close = getattr(p, "close", None)
            if close is not None:
                close()


def model_names(predictors: Sequence[Any], arguments: Sequence[str]) -> list[str]:
    """Column names for the models: each one's metadata name (Predictor.metadata["name"]); where two share one
    (two versions of a model), the --model folders' names instead."""
    folders = [str(arg).rstrip("/").rsplit("/", 1)[-1] for arg in arguments]
    names = [str((getattr(p, "metadata", None) or {}).get("name") or f) for p, f in zip(predictors, folders)]
    return names if len(set(names)) == len(names) else folders
