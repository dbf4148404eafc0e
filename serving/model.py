"""The Python door for notebooks and scripts: `load_model("models/ctcf")` (a model folder or a BentoML store tag)
gives a Model whose methods are thin calls onto what the `bindcnn` commands and the service already use, so a
notebook gets the same numbers as the command line. TensorFlow is imported only by attribute().

    from serving import load_model
    model = load_model("models/ctcf")
    model.predict(["ACGT..."])["probability"]          # (N,) float32
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np


@dataclass
class VariantSpec:
    """A substitution or indel against a reference sequence: pos is 1-based in that sequence."""

    pos: int
    ref: str
    alt: str
    id: str = ""


def load_model(model: str | os.PathLike, device: str = "auto") -> "Model":
    """A model folder (models/<name>, checked against its checksums) or a BentoML store tag ("ctcf",
    "ctcf:latest", "ctcf:<version>") -> Model on ONNX Runtime (device "auto", "cpu" or "cuda")."""
    from serving.store import resolve

    path = Path(model)
    if not path.is_dir():
        tag = str(model) if ":" in str(model) else f"{model}:latest"
        path = resolve(tag)  # ArtifactError saying what to run when the store has no such model
    return Model(path, device)


class Model:
    """One exported model. predictor: the serving.predictor.Predictor behind every method; length, alphabet:
    what its inputs must be (metadata.json); metadata: the whole metadata.json."""

    def __init__(self, model_dir: str | os.PathLike, device: str = "auto"):
        from serving.predictor import Predictor

        self.predictor = Predictor(model_dir, device=device)
        self.model_dir = Path(model_dir)
        self.metadata: dict[str, Any] = self.predictor.metadata
        self.length: int = self.predictor.length
        self.alphabet: str = self.predictor.alphabet
        self._logits_fn = None

    def __repr__(self) -> str:
        return (f"Model({self.metadata['name']}:{self.metadata['version']}, {self.length} nt, "
                f"{self.predictor.device})")

    def _onehot(self, sequences: str | Sequence[str] | np.ndarray) -> np.ndarray:
        from serving.dna import check_onehot, encode

        if isinstance(sequences, str):
            sequences = [sequences]
        if isinstance(sequences, np.ndarray):
            return check_onehot(sequences, self.length)
        return encode(list(sequences), self.length, self.alphabet)

    def predict(self, sequences: str | Sequence[str] | np.ndarray, reverse_complement_average: bool = False
                ) -> dict[str, np.ndarray]:
        """sequences: N strings of the model's length (ACGTN, any case), or one-hot x: (N, L, 4) / (N, 4, L) ->
        {"probability": (N,), "logit": (N,)} float32. Raises serving.dna.SequenceError naming the sequence and
        position of a bad character."""
        return self.predictor.predict_onehot(self._onehot(sequences), reverse_complement_average)

    def scan(self, sequence: str, stride: int = 1, reverse_complement_average: bool = False) -> dict[str, np.ndarray]:
        """Every window of the model's length along one sequence of any length >= L, at `stride` (the scan
        engine where the model folder has one) -> {"start": (W,) int64 0-based window starts, "probability": (W,),
        "logit": (W,)} float32; the same as `bindcnn scan`."""
        from serving.scoring.scan import scan_sequence

        result = scan_sequence(self.predictor, sequence, stride, rc=reverse_complement_average)
        return {"start": result.starts, "probability": result.probability, "logit": result.logit}

    def mutagenesis(self, sequence: str, reverse_complement_average: bool = False) -> np.ndarray:
        """In silico saturation mutagenesis of one sequence of the model's length -> delta_logit: (L, 4) float32,
        logit(base b at position i) - logit(sequence), 0 at the reference base; as `bindcnn mutagenesis`."""
        from serving.scoring.mutagenesis import saturation_mutagenesis

        return saturation_mutagenesis(self.predictor, sequence, reverse_complement_average)[0]

    def variants(self, sequence: str, variants: Iterable[VariantSpec | tuple | dict], name: str = "sequence",
                 reverse_complement_average: bool = False) -> list[dict[str, Any]]:
        """Variants against a reference sequence (VariantSpec, (pos, ref, alt[, id]) tuples or dicts; pos 1-based
        in `sequence`), each scored on the window of the model's length centred on it -> one dict per variant:
        id, chrom, pos, ref, alt, status ("ok" or why not scored) and, when scored, ref/alt/delta probability and
        logit and the delta's p_value against the model's null of random substitutions (None where the model
        folder has none: `bindcnn null --model DIR` adds it); the rows of the service's /variants."""
        from serving.scoring.variants import effect_rows, in_sequence, variant_effects

        items = [v if isinstance(v, VariantSpec) else VariantSpec(**v) if isinstance(v, dict) else VariantSpec(*v)
                 for v in variants]
        parsed = in_sequence(sequence, items, name, self.length)
        return effect_rows(parsed, variant_effects(self.predictor, parsed, reverse_complement_average))

    def attribute(self, sequences: str | Sequence[str] | np.ndarray, method: str | None = None) -> np.ndarray:
        """Attribution of the logit to each observed base: (N, L, 4) float32 (zero at unobserved bases), by
        `method` (serving.attribution.METHODS; default serving.attribution.DEFAULT_METHOD). Loads TensorFlow and
        the model's SavedModel on the first call (a few seconds); each sequence's map depends only on it."""
        from serving.attribution import DEFAULT_METHOD, attribute, load_logits_fn

        if self._logits_fn is None:
            self._logits_fn = load_logits_fn(self.model_dir)
        return attribute(self._logits_fn, self._onehot(sequences), method or DEFAULT_METHOD)
