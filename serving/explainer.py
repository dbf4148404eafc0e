"""The saliency explainer: a BentoML service holding the TensorFlow SavedModel's `logits` endpoint in its
own worker (TensorFlow is imported in __init__ only), composed into serving.service with bentoml.depends.

The gradient code lives in training/saliency.py; this module only serves it.
"""
from __future__ import annotations

import base64
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import bentoml
import numpy as np

from serving.artifact import SAVED_MODEL_DIR, check_fingerprint, probe_inputs, verify_model_dir
from serving.encoding import encode
from serving.store import DEFAULT_MODEL_TAG, MODEL_ENV, resolve

log = logging.getLogger("bentoml.bindcnn.explainer")

MODEL_TAG = os.environ.get(MODEL_ENV) or DEFAULT_MODEL_TAG


class StoreModel(bentoml.models.BentoModel):
    """A BentoModel (packed by `bentoml build`) that, when missing from the local store, stops
    `bentoml serve` with a message saying what to run instead of trying BentoCloud."""

    def resolve(self, base_path=None, **kwargs):  # type: ignore[override]
        if self.stored is None:
            resolve(str(self.tag))  # raises ArtifactError: "Train and register it with: ..."
        return super().resolve(base_path, **kwargs)


def model_dir_of(ref: bentoml.models.BentoModel, need: tuple[str, ...]) -> tuple[Path, dict[str, Any]]:
    """The verified store directory and metadata of a BentoModel reference. Raises ArtifactError that
    says what to run when the model is missing from the store or does not match its checksums."""
    path = resolve(str(ref.tag))
    return path, verify_model_dir(path, need=need)


@bentoml.service(name="bindcnn-explainer", workers=1, traffic={"timeout": 300})
class Explainer:
    """grad x input saliency of the model's pre-sigmoid logit, from the TensorFlow SavedModel."""

    model = StoreModel(MODEL_TAG)

    def __init__(self) -> None:
        from training import quiet_tensorflow

        self.model_dir, self.metadata = model_dir_of(type(self).model, need=(SAVED_MODEL_DIR,))
        quiet_tensorflow()
        from training.saliency import load_logits_fn

        self.logits_fn = load_logits_fn(self.model_dir)
        self.length: int = self.metadata["sequence_length"]
        # Refuse a SavedModel that does not reproduce the logits recorded at export (the predictor checks
        # model.onnx against the same record, so the two cannot disagree).
        check_fingerprint(self.metadata, np.asarray(self.logits_fn(probe_inputs(self.length))),
                          "the TensorFlow SavedModel (saved_model/)")
        self.alphabet: str = self.metadata["alphabet"]
        log.info("explainer: %s:%s SavedModel loaded from %s", self.metadata["name"],
                 self.metadata["version"], self.model_dir)

    def _scores(self, sequences: list[str], corrected: bool) -> np.ndarray:
        from training.saliency import saliency

        return saliency(self.logits_fn, encode(sequences, self.length, self.alphabet), corrected=corrected)

    @bentoml.api
    def saliency(self, sequences: list[str], corrected: bool = False) -> np.ndarray:
        """sequences: N valid strings of the model's length (the caller validates) -> (N, L, 4) float32."""
        return self._scores(sequences, corrected)

    @bentoml.api
    def logo(self, sequence: str, corrected: bool = False) -> str:
        """One sequence -> its saliency logo as a base64-encoded PNG."""
        from training.saliency import plot_logo

        scores = self._scores([sequence], corrected)[0]
        with tempfile.TemporaryDirectory(prefix="bindcnn-logo-") as tmp:
            path = plot_logo(scores, Path(tmp) / "logo.png",
                             title=f"grad x input{' (corrected)' if corrected else ''}", alphabet=self.alphabet)
            return base64.b64encode(path.read_bytes()).decode("ascii")

    @bentoml.api
    def describe(self) -> dict:
        import tensorflow as tf

        return {"tensorflow": tf.__version__, "tensorflow_loaded": "tensorflow" in sys.modules,
                "model_dir": str(self.model_dir)}
