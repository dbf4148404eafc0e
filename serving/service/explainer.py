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
from serving.service.bentoml_compat import bound_shutdown, quiet_client_errors
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

    def _attribution(self, sequences: list[str], corrected: bool | None, method: str | None):
        from serving.attribution import attribution, resolve_method

        method = resolve_method(method, corrected if method is None else None)
        return attribution(self.logits_fn, encode(sequences, self.length, self.alphabet), method), method

    @bentoml.api
    def saliency(self, sequences: list[str], corrected: bool | None = None, method: str | None = None) -> dict:
        """sequences: N valid strings of the model's length (the caller validates) -> {"method", "scores": (N, L, 4),
        "convergence_delta": N floats (expected_gradients: each map's completeness gap) or None}. method:
        gradient, corrected or expected_gradients (serving.attribution.DEFAULT_METHOD when neither it nor the
        older `corrected` is given, as in the app's /saliency). A sequence's map is the same in any row/request."""
        result, method = self._attribution(sequences, corrected, method)
        delta = result.convergence_delta
        return {"method": method, "scores": result.scores.tolist(),
                "convergence_delta": None if delta is None else delta.tolist()}

    @bentoml.api
    def logo(self, sequence: str, corrected: bool | None = None, method: str | None = None) -> str:
        """One sequence -> its attribution logo as a base64-encoded PNG."""
        from serving.plots import plot_logo

        result, method = self._attribution([sequence], corrected, method)
        buf = plot_logo(result.scores[0], io.BytesIO(), title=method.replace("_", " "), alphabet=self.alphabet,
                        ylabel=method.replace("_", " "))
        return base64.b64encode(buf.getvalue()).decode("ascii")

    @bentoml.api
    async def describe(self) -> dict:
        """Whether this worker holds TensorFlow and its version. Async: answered on the event loop, not queued
        behind gradients (the predictor's readiness probe and /model ask it)."""
        loaded = "tensorflow" in sys.modules
        tf = sys.modules.get("tensorflow")
        return {"tensorflow": getattr(tf, "__version__", None), "tensorflow_loaded": loaded,
                "model_dir": str(self.model_dir)}
