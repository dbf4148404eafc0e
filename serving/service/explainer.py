"""The saliency explainer: a BentoML service holding the TensorFlow SavedModel's `logits` endpoint in its
own worker (TensorFlow is imported in __init__ only), composed into serving.service.app with bentoml.depends.

The gradient code lives in serving/attribution.py; this module only serves it.
"""
from __future__ import annotations

import base64
import io
import logging
import sys

import bentoml
import numpy as np

from serving.artifact import SAVED_MODEL_DIR, check_fingerprint, probe_inputs
from serving.dna import encode
from serving.service.errorlog import quiet_client_errors
from serving.service.shutdown import bound_shutdown
from serving.service.modelref import MODEL_TAG, StoreModel, model_dir_of

log = logging.getLogger("bentoml.bindcnn.explainer")


@bentoml.service(name="bindcnn-explainer", workers=1, traffic={"timeout": 300})
class Explainer:
    """grad x input saliency of the model's pre-sigmoid logit, from the TensorFlow SavedModel."""

    model = StoreModel(MODEL_TAG)

    def __init__(self) -> None:
        from serving.attribution import load_logits_fn

        self.model_dir, self.metadata = model_dir_of(type(self).model, need=(SAVED_MODEL_DIR,))
        self.logits_fn = load_logits_fn(self.model_dir)
        self.length: int = self.metadata["sequence_length"]
        # Refuse a SavedModel that does not reproduce the logits recorded at export (the predictor checks
        # model.onnx against the same record, so the two cannot disagree).
        check_fingerprint(self.metadata, np.asarray(self.logits_fn(probe_inputs(self.length))),
                          "the TensorFlow SavedModel (saved_model/)")
        self.alphabet: str = self.metadata["alphabet"]
        quiet_client_errors()  # a 4xx is one WARNING line, not a traceback
        from serving.plots import warm_up

        warm_up()  # fonts and letter outlines now: the first logo request then takes well under a second
        bound_shutdown("bindcnn-explainer")  # Ctrl-C / SIGTERM: a few seconds for in-flight requests, then exit
        log.info("explainer: %s:%s SavedModel loaded from %s", self.metadata["name"],
                 self.metadata["version"], self.model_dir)

    def _scores(self, sequences: list[str], corrected: bool) -> np.ndarray:
        from serving.attribution import saliency

        return saliency(self.logits_fn, encode(sequences, self.length, self.alphabet), corrected=corrected)

    @bentoml.api
    def saliency(self, sequences: list[str], corrected: bool = False) -> np.ndarray:
        """sequences: N valid strings of the model's length (the caller validates) -> (N, L, 4) float32."""
        return self._scores(sequences, corrected)

    @bentoml.api
    def logo(self, sequence: str, corrected: bool = False) -> str:
        """One sequence -> its saliency logo as a base64-encoded PNG."""
        from serving.plots import plot_logo

        scores = self._scores([sequence], corrected)[0]
        buf = plot_logo(scores, io.BytesIO(), title=f"grad x input{' (corrected)' if corrected else ''}",
                        alphabet=self.alphabet)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    @bentoml.api
    def describe(self) -> dict:
        """Whether this worker holds TensorFlow (read before anything is imported here) and its version."""
        loaded = "tensorflow" in sys.modules
        tf = sys.modules.get("tensorflow")
        return {"tensorflow": getattr(tf, "__version__", None), "tensorflow_loaded": loaded,
                "model_dir": str(self.model_dir)}
