"""The HTTP service (`bentoml serve` at the repository root; bentofile.yaml points here): thin endpoints over
the ONNX Runtime predictor in this worker, and saliency from the TensorFlow explainer in its own worker.

This module and its worker never import TensorFlow (/model reports `tensorflow_loaded`). Reading, checking and
shaping live in serving.scoring and serving.service.uploads; each endpoint only wires them to HTTP.
"""
from __future__ import annotations

import base64
import io
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import bentoml
import numpy as np
from bentoml.exceptions import InvalidArgument, ServiceUnavailable
from bentoml.validators import ContentType
from pydantic import Field

from serving.artifact import ONNX_FILE
from serving.dna import SequenceError, encode, to_codes
from serving.predictor import Predictor
from serving.scoring import mutagenesis as mut
from serving.scoring import scan as scan_mod
from serving.scoring import variants as var
from serving.scoring.regions import parse_region
from serving.service import apidocs
from serving.service import limits as limits_mod
from serving.service import uploads
from serving.service.explainer import Explainer
from serving.service.guard import RequestGuard
from serving.service.errorlog import quiet_client_errors
from serving.service.shutdown import bound_shutdown
from serving.service.modelref import MODEL_TAG, StoreModel, model_dir_of
from serving.service.openapi import ErrorBodyMiddleware, document_validation_errors
from serving.service.schemas import BATCH_MAX_SIZE, SPEC, BatchItems, VariantIn, item_sequence
from serving.versions import package_versions

log = logging.getLogger("bentoml.bindcnn.service")

LIMITS = limits_mod.from_env()
BATCH_MAX_LATENCY_MS = 1000  # FACTS.md: 20 ms gave 503s under 16 clients, 1000 none
Stride = Annotated[int, Field(ge=1)]
Threshold = Annotated[float, Field(ge=0, le=1)]
Short = Literal["reject", "pad"]
PNG = Annotated[Path, ContentType("image/png")]


def _png(data: bytes) -> Any:
    from starlette.responses import Response

    return Response(data, media_type="image/png")


@bentoml.service(name="bindcnn", workers=1, traffic={"timeout": 300})
class BindCNN:
    """Binding probability (and logit) of DNA sequences from the exported ONNX model."""

    bento_model = StoreModel(MODEL_TAG)
    explainer = bentoml.depends(Explainer)

    def __init__(self) -> None:
        self.model_dir, self.metadata = model_dir_of(type(self).bento_model, need=(ONNX_FILE,))
        self.predictor = Predictor(self.model_dir, verify=False)  # verified just above
        self.length: int = self.predictor.length
        self.alphabet: str = self.predictor.alphabet
        SPEC.update(length=self.length, alphabet=self.alphabet)
        apidocs.MODEL.update(name=self.metadata["name"], version=self.metadata["version"], length=self.length,
                             alphabet=self.alphabet, metrics=self.metadata.get("metrics"))
        quiet_client_errors()  # a 4xx is one WARNING line, not a traceback
        if _installed("matplotlib"):
            from serving.plots import warm_up

            warm_up()  # fonts and letter outlines now: the first /mutagenesis_logo takes well under a second
        bound_shutdown("bindcnn")  # Ctrl-C / SIGTERM: a few seconds for in-flight requests, then exit
        log.info("bindcnn: model %s:%s from %s on ONNX Runtime providers %s; tensorflow imported: %s",
                 self.metadata["name"], self.metadata["version"], self.model_dir, self.predictor.providers,
                 "tensorflow" in sys.modules)

    def _encode(self, sequences: list[str], limit: limits_mod.Limit = LIMITS.sequences) -> np.ndarray:
        """sequences: N strings -> x: (N, L, 4) float32, or 400 naming the index/position/character (413 past
        the limit)."""
        limit.check(len(sequences))
        try:
            return encode(sequences, self.length, self.alphabet)
        except SequenceError as exc:
            raise InvalidArgument(str(exc)) from None

    def _scores(self, x: np.ndarray, reverse_complement_average: bool) -> dict[str, list[float]]:
        out = self.predictor.predict_onehot(x, reverse_complement_average)
        return {"probability": out["probability"].tolist(), "logit": out["logit"].tolist()}

    # ------------------------------------------------------------------------------------ predictions
    @bentoml.api
    def predict(self, sequences: list[str], reverse_complement_average: bool = False) -> dict[str, list[float]]:
        """sequences: N strings of the model's length (ACGTN, any case) -> probability, logit: N floats each."""
        return self._scores(self._encode(sequences), reverse_complement_average)

    @bentoml.api
    def predict_fasta(self, fasta: Path, reverse_complement_average: bool = False) -> list[dict[str, Any]]:
        """Multipart file field `fasta` (plain or gzip FASTA) -> [{id, probability, logit}] per record."""
        ids, x = uploads.fasta_onehot(fasta, LIMITS, self.length, self.alphabet)
        out = self._scores(x, reverse_complement_average)
        return [{"id": rid, "probability": p, "logit": z} for rid, p, z in zip(ids, out["probability"], out["logit"])]

    @bentoml.api
    def predict_onehot(self, array: Path, reverse_complement_average: bool = False) -> dict[str, list[float]]:
        """Multipart file field `array`: a .npy one-hot (N, L, 4) or (N, 4, L), float/uint8/bool ->
        probability, logit: N floats each."""
        return self._scores(uploads.npy_onehot(array, LIMITS, self.length), reverse_complement_average)

    @bentoml.api(batchable=True, max_batch_size=BATCH_MAX_SIZE, max_latency_ms=BATCH_MAX_LATENCY_MS)
    def predict_one(self, sequences: BatchItems) -> list[dict[str, float]]:
        """For many concurrent small clients: each request sends one (or a few) sequences, as strings or
        {"sequence", "reverse_complement_average"} objects; concurrent requests share one ONNX batch.
        Returns [{probability, logit}] per sequence."""
        rc = np.array([not isinstance(s, str) and s.reverse_complement_average for s in sequences], bool)
        x = encode([item_sequence(s) for s in sequences], self.length, self.alphabet)  # validated per request
        out = self.predictor.predict_onehot(x)
        prob, logit = out["probability"], out["logit"]
        if rc.any():
            both = self.predictor.predict_onehot(x[rc], reverse_complement_average=True)
            prob[rc], logit[rc] = both["probability"], both["logit"]
        return [{"probability": p, "logit": z} for p, z in zip(prob.tolist(), logit.tolist())]

    # ------------------------------------------------------- long sequences, variants, mutagenesis
    def _scan(self, sequence: str, name: str, index: int | None, stride: int, threshold: float, short: str,
              rc: bool, budget: int) -> dict[str, Any]:
        """Scan one record -> serving.scoring.scan.result_dict; at most `budget` windows, else 413."""
        n = len(sequence)
        windows = scan_mod.n_windows(n, self.length, stride) if n >= self.length else 1
        if windows > budget:
            raise limits_mod.TooLarge(f"{name}: {n} bp at stride {stride} is {windows} windows; the limit is "
                                      f"{LIMITS.scan_windows.value} per request (server setting "
                                      f"{LIMITS.scan_windows.env}); {LIMITS.scan_windows.advice}")
        try:
            result = scan_mod.scan_sequence(self.predictor, sequence, stride, short, rc, rid=name, index=index)
        except SequenceError as exc:
            raise InvalidArgument(str(exc) if index is not None else f"{name}: {exc.reason}") from None
        return scan_mod.result_dict(result, parse_region(name, n), threshold)

    @bentoml.api
    def scan(self, sequence: str, id: str = "sequence", stride: Stride = 1, threshold: Threshold = 0.5,
             short: Short = "reject", reverse_complement_average: bool = False) -> dict[str, Any]:
        """One long sequence -> every window of the model's length at `stride`: start, end (BED-style,
        genome coordinates when `id` is `chrom:start-end`), probability, logit; and `sites`: windows with
        probability >= threshold, overlapping ones merged (max score). Shorter sequences: 400, or with
        short="pad" padded with N to one window."""
        return self._scan(sequence, id, None, stride, threshold, short, reverse_complement_average,
                          LIMITS.scan_windows.value)

    @bentoml.api
    def scan_fasta(self, fasta: Path, stride: Stride = 1, threshold: Threshold = 0.5, short: Short = "reject",
                   reverse_complement_average: bool = False) -> list[dict[str, Any]]:
        """Multipart `fasta` (plain or gzip) -> one /scan result per record, in file order."""
        out, budget = [], LIMITS.scan_windows.value
        for i, record in enumerate(uploads.fasta_records(fasta, LIMITS)):
            result = self._scan(record.sequence, record.id, i, stride, threshold, short,
                                reverse_complement_average, budget)
            budget -= len(result["probability"])
            out.append(result)
        return out

    @bentoml.api
    def variants(self, sequence: str, variants: list[VariantIn], id: str = "sequence",
                 reverse_complement_average: bool = False) -> list[dict[str, Any]]:
        """A reference sequence and variants (1-based pos of the first ref base in `sequence`, ref, alt)
        -> per variant: ref/alt probability and logit, delta = alt - ref, and `status` ("ok", or why it
        was not scored, e.g. a ref that does not match the sequence). Windows of the model's length
        are centred on each variant."""
        if not variants:
            raise InvalidArgument("no variants given")
        LIMITS.variants.check(len(variants))
        try:
            to_codes(sequence, None, self.alphabet)
        except SequenceError as exc:
            raise InvalidArgument(str(exc)) from None
        parsed = var.in_sequence(sequence, variants, id, self.length)
        return var.effect_rows(parsed, var.variant_effects(self.predictor, parsed, reverse_complement_average))

    def _mutagenesis(self, sequence: str, rc: bool) -> tuple[np.ndarray, float]:
        try:
            return mut.saturation_mutagenesis(self.predictor, sequence, rc)
        except SequenceError as exc:
            raise InvalidArgument(str(exc)) from None

    @bentoml.api
    def mutagenesis(self, sequence: str, reverse_complement_average: bool = False) -> dict[str, Any]:
        """In silico saturation mutagenesis of one sequence of the model's length: delta_logit (L, 4) =
        logit(base b at position i) - logit(sequence), 0 at the reference base; all 4L mutants in one batch."""
        delta, ref_logit = self._mutagenesis(sequence, reverse_complement_average)
        return {"ref_logit": ref_logit, "alphabet": self.alphabet, "delta_logit": delta.tolist()}

    @bentoml.api
    def mutagenesis_logo(self, sequence: str, reverse_complement_average: bool = False) -> PNG:
        """One sequence -> its mutagenesis as a PNG: the reference bases scaled by their importance (minus the mean
        logit change of substituting them) over a heat map of every substitution's logit change."""
        delta, _ = self._mutagenesis(sequence, reverse_complement_average)
        buf = io.BytesIO()
        mut.plot_mutagenesis(delta, sequence, buf, alphabet=self.alphabet)
        return _png(buf.getvalue())

    # ---------------------------------------------------------------------- saliency (explainer worker)
    async def _explain(self, method: str, **kwargs):
        """Call the explainer worker. Its connection can drop under load (it closes an idle keep-alive
        connection just as this worker reuses it) or while it restarts: retry once, then answer 503."""
        import asyncio

        import aiohttp

        for attempt in (1, 2):
            try:
                return await getattr(self.explainer.to_async, method)(**kwargs)
            except aiohttp.ClientConnectionError as exc:
                if attempt == 2:
                    raise ServiceUnavailable(f"the saliency worker is unavailable ({exc}); retry shortly") from None
                log.warning("explainer %s: %s; retrying once", method, exc)
                await asyncio.sleep(0.05)

    def _check_text(self, sequences: list[str], limit: limits_mod.Limit) -> None:
        """Validate without encoding (the explainer encodes), or 400/413."""
        from serving.dna import check_sequences

        limit.check(len(sequences))
        try:
            check_sequences(sequences, self.length, self.alphabet)
        except SequenceError as exc:
            raise InvalidArgument(str(exc)) from None

    @bentoml.api
    async def saliency(self, sequences: list[str], corrected: bool = False) -> dict[str, list]:
        """sequences: N strings -> scores: (N, L, 4) grad x input of the logit (TensorFlow explainer).
        corrected: subtract each position's mean gradient over A/C/G/T first."""
        self._check_text(sequences, LIMITS.saliency_sequences)
        scores = await self._explain("saliency", sequences=sequences, corrected=corrected)
        return {"scores": np.asarray(scores, np.float32).tolist()}

    @bentoml.api
    async def saliency_logo(self, sequence: str, corrected: bool = False) -> PNG:
        """One sequence -> its saliency as a logomaker sequence logo (PNG)."""
        self._check_text([sequence], LIMITS.saliency_sequences)
        return _png(base64.b64decode(await self._explain("logo", sequence=sequence, corrected=corrected)))

    @bentoml.api(route="/model")
    async def model_info(self) -> dict[str, Any]:
        """The model's metadata.json, the active execution providers and versions (GET or POST)."""
        try:
            explainer = await self.explainer.to_async.describe()
        except Exception as exc:  # the explainer being down must not hide the predictor's state
            explainer = {"error": f"explainer unavailable: {exc}"}
        return {
            "model": self.metadata,
            "tag": str(type(self).bento_model.tag),
            "model_dir": str(self.model_dir),
            "predictor": self.predictor.describe(),
            "tensorflow_loaded": "tensorflow" in sys.modules,
            "worker_pid": os.getpid(),
            "versions": package_versions(),
            "limits": {**LIMITS.as_dict(), "predict_one_max_batch_size": BATCH_MAX_SIZE},
            "explainer": explainer,
        }


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def _file_routes(service) -> dict[str, list[str]]:
    """route -> its multipart file parameters, e.g. {'/predict_fasta': ['fasta']}."""
    return {m.route: list(m.input_spec.multipart_fields)
            for m in service.apis.values() if getattr(m.input_spec, "multipart_fields", None)}


BindCNN.add_asgi_middleware(RequestGuard, max_body_bytes=LIMITS.upload_bytes.value, body_env=LIMITS.upload_bytes.env,
                            file_fields=_file_routes(BindCNN), get_as_post=("/model",))
BindCNN.add_asgi_middleware(apidocs.ApiDocs, version=package_versions(("bindcnn",))["bindcnn"])
BindCNN.add_asgi_middleware(ErrorBodyMiddleware)  # 4xx bodies as documented: {"error": ...}
document_validation_errors()  # /docs.json: a 400's detail may be pydantic's error list
