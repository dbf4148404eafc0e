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
from serving.service.modelref import MODEL_TAGS, StoreModel, model_dir_of

log = logging.getLogger("bentoml.bindcnn.explainer")


@bentoml.service(name="bindcnn-explainer", workers=1, traffic={"timeout": 300})
class Explainer:
    """Attributions of the served models' pre-sigmoid logits, from their TensorFlow SavedModels ($BINDCNN_MODELS,
    the same models as the predictor; the first answers a request that names none)."""

    model = StoreModel(MODEL_TAGS[0])
    # One BentoModel attribute per further model of $BINDCNN_MODELS, so that `bentoml build` packs each of them.
    locals().update({f"model_{i}": StoreModel(tag) for i, tag in enumerate(MODEL_TAGS[1:], 2)})

    def __init__(self) -> None:
        from serving.attribution import load_logits_fn

        refs = [type(self).model] + [getattr(type(self), f"model_{i}") for i in range(2, len(MODEL_TAGS) + 1)]
        self.served: dict[str, tuple] = {}  # name -> (model folder, metadata, logits function)
        for ref in refs:
            model_dir, metadata = model_dir_of(ref, need=(SAVED_MODEL_DIR,))
            logits_fn = load_logits_fn(model_dir)
            # Refuse a SavedModel that does not reproduce the logits recorded at export (the predictor checks
            # model.onnx against the same record, so the two cannot disagree).
            check_fingerprint(metadata, np.asarray(logits_fn(probe_inputs(metadata["sequence_length"]))),
                              "the TensorFlow SavedModel (saved_model/)")  # the error names the model
            self.served[metadata["name"]] = (model_dir, metadata, logits_fn)
        self.model_dir, self.metadata, self.logits_fn = next(iter(self.served.values()))
        self.length: int = self.metadata["sequence_length"]
        self.alphabet: str = self.metadata["alphabet"]
        quiet_client_errors()  # a 4xx is one WARNING line, not a traceback
        from serving.plots import warm_up

        warm_up()  # fonts and letter outlines now: the first logo request then takes well under a second
        bound_shutdown("bindcnn-explainer")  # Ctrl-C / SIGTERM: a few seconds for in-flight requests, then exit
        log.info("explainer: SavedModels of %s loaded", ", ".join(f"{m['name']}:{m['version']}" for _, m, _ in
                                                                  self.served.values()))

    def _attribution(self, sequences: list[str], corrected: bool | None, method: str | None, model: str | None):
        from bentoml.exceptions import InvalidArgument

        from serving.attribution import attribution, resolve_method

        if model and model.split(":")[0] not in self.served:
            raise InvalidArgument(f"model {model!r} is not served here; served: {', '.join(self.served)}")
        _, metadata, logits_fn = self.served[model.split(":")[0]] if model else next(iter(self.served.values()))
        method = resolve_method(method, corrected if method is None else None)
        x = encode(sequences, metadata["sequence_length"], metadata["alphabet"])
        return attribution(logits_fn, x, method), method

    @bentoml.api
    def saliency(self, sequences: list[str], corrected: bool | None = None, method: str | None = None,
                 model: str | None = None) -> dict:
        """sequences: N valid strings of the model's length (the caller validates) -> {"method", "scores": (N, L, 4),
        "convergence_delta": N floats (expected_gradients: each map's completeness gap) or None}. method:
        gradient, corrected or expected_gradients (serving.attribution.DEFAULT_METHOD when neither it nor the
        older `corrected` is given, as in the app's /saliency). A sequence's map is the same in any row/request.
        model: a served model's name (default: the first)."""
        result, method = self._attribution(sequences, corrected, method, model)
        delta = result.convergence_delta
        return {"method": method, "scores": result.scores.tolist(),
                "convergence_delta": None if delta is None else delta.tolist()}

    @bentoml.api
    def logo(self, sequence: str, corrected: bool | None = None, method: str | None = None,
             model: str | None = None) -> str:
        """One sequence -> its attribution logo as a base64-encoded PNG."""
        from serving.plots import plot_logo

        result, method = self._attribution([sequence], corrected, method, model)
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
