"""The HTTP service (`bentoml serve` at the repository root; bentofile.yaml points here): thin endpoints over the
ONNX Runtime predictor in this worker, and saliency from the TensorFlow explainer (serving.service.explainer_link).

This module and its worker never import TensorFlow (/model reports `tensorflow_loaded`). Reading, checking and
shaping live in serving.scoring and serving.service.uploads; each endpoint only wires them to HTTP. A request passes
two middlewares (the body cap of serving.service.guard, the error shape of serving.service.errors), then its
endpoint; routes @bentoml.api cannot express live in serving.service.routes.
"""
from __future__ import annotations

import base64
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import bentoml
import numpy as np
from bentoml.exceptions import InvalidArgument
from bentoml.validators import ContentType
from pydantic import Field

from serving.dna import SequenceError, average_strands, encode_codes, reverse_complement, to_codes
from serving.scoring import mutagenesis as mut
from serving.scoring import scan as scan_mod
from serving.scoring import variants as var
from serving.scoring.regions import parse_region
from serving.service import limits as limits_mod
from serving.service import explainer_link, metrics, routes, uploads, workers
from serving.service.bentoml_compat import bound_shutdown, quiet_client_errors
from serving.service.errors import ErrorAnswers
from serving.service.guard import RequestGuard, file_routes
from serving.service.modelref import MODEL_TAGS, Served, StoreModel, load_served
from serving.service.schemas import (BATCH_MAX_SIZE, AttributionMethod, BatchItems, OneSequence, VariantIn,
                                    attribution_method, item_sequence)
from serving.versions import package_versions

log = logging.getLogger("bentoml.bindcnn.service")

LIMITS = limits_mod.from_env()
Stride = Annotated[int, Field(ge=1)]
Threshold = Annotated[float, Field(ge=0, le=1)]
Short = Literal["reject", "pad"]
PNG = Annotated[Path, ContentType("image/png")]


@bentoml.service(name="bindcnn", **workers.predictor_config())  # BINDCNN_WORKERS: one per core (CPU) / GPU
class BindCNN:
    """Binding probability (and logit) of DNA sequences from the exported ONNX model."""

    bento_model = StoreModel(MODEL_TAGS[0])  # the default model ($BINDCNN_MODELS' first)
    # One BentoModel attribute per further model of $BINDCNN_MODELS, so that `bentoml build` packs each of them.
    locals().update({f"bento_model_{i}": StoreModel(tag) for i, tag in enumerate(MODEL_TAGS[1:], 2)})
    explainer = explainer_link.dependency()  # BINDCNN_EXPLAINER_URL, else in-process when TensorFlow is here

    def __init__(self) -> None:
        workers.pin_gpu()  # several GPUs: one per worker
        refs = [type(self).bento_model] + [getattr(type(self), f"bento_model_{i}")
                                           for i in range(2, len(MODEL_TAGS) + 1)]
        self.served: dict[str, Served] = load_served(refs, workers.threads_per_worker())
        default = next(iter(self.served.values()))  # a request that names no model gets this one
        self.model_dir, self.metadata, self.predictor = default.model_dir, default.metadata, default.predictor
        self.link = explainer_link.ExplainerLink(self.explainer, explainer_link.mode())
        for m in self.served.values():
            metrics.model_info(m.name, m.metadata["version"], m.predictor.providers[0])
        self.limits = LIMITS
        quiet_client_errors()  # a 4xx is one WARNING line, not a traceback
        if explainer_link.installed("matplotlib"):
            from serving.plots import warm_up

            warm_up()  # fonts and letter outlines now: the first /mutagenesis_logo takes well under a second
        bound_shutdown("bindcnn")  # Ctrl-C / SIGTERM: a few seconds for in-flight requests, then exit
        log.info("bindcnn: models %s (default %s) on ONNX Runtime providers %s; tensorflow imported: %s",
                 ", ".join(m.tag for m in self.served.values()), default.name, self.predictor.providers,
                 "tensorflow" in sys.modules)

    def pick(self, model: str | None) -> Served:
        """The served model a request names (None: the default), or 400 naming the served ones."""
        if model is None or model == "":
            return next(iter(self.served.values()))
        found = self.served.get(model.split(":")[0])
        if found is None or (":" in model and model != found.tag):
            raise InvalidArgument(f"model {model!r} is not served here; served: {', '.join(self.served)} "
                                  "(GET /models describes them)")
        return found

    def _codes(self, m: Served, sequences: list[str], limit: limits_mod.Limit = LIMITS.sequences) -> np.ndarray:
        """sequences: N strings -> codes: (N, L) uint8 (serving.dna.encode_codes) for model m, or 400 naming the
        index, position and character (413 past the limit)."""
        limit.check(len(sequences))
        try:
            return encode_codes(sequences, m.length, m.alphabet)
        except SequenceError as exc:
            metrics.note_reject(metrics.sequence_reason(exc))
            raise InvalidArgument(str(exc)) from None

    def _answer(self, out: dict[str, np.ndarray], endpoint: str, m: Served) -> dict[str, list[float]]:
        """probability, logit (N,) float32 of model m -> their JSON lists; counted in /metrics."""
        metrics.scored(len(out["logit"]), endpoint, m.name)
        return {"probability": out["probability"].tolist(), "logit": out["logit"].tolist()}

    # ------------------------------------------------------------------------------------ predictions
    @bentoml.api
    def predict(self, sequences: list[str], reverse_complement_average: bool = False,
                model: Optional[str] = None) -> dict[str, list[float]]:
        """sequences: N strings of the model's length (ACGTN, any case) -> probability, logit: N floats each.
        model: a served model's name (GET /models); default: the first served."""
        m = self.pick(model)
        return self._answer(m.predictor.predict_codes(self._codes(m, sequences), reverse_complement_average),
                            "predict", m)

    @bentoml.api
    def predict_fasta(self, fasta: Path, reverse_complement_average: bool = False,
                      model: Optional[str] = None) -> list[dict[str, Any]]:
        """Multipart file field `fasta` (plain or gzip FASTA) -> [{id, probability, logit, reason}] per record in file
        order; a record that cannot be scored has probability and logit null and the reason (as `bindcnn score`'s
        rejects file). 400 when no record can be scored, listing why for each."""
        m = self.pick(model)
        ids, codes, reasons = uploads.fasta_codes(fasta, LIMITS, m.length, m.alphabet)
        out = self._answer(m.predictor.predict_codes(codes, reverse_complement_average), "predict_fasta", m)
        scored = iter(zip(out["probability"], out["logit"]))
        rows = []
        for rid, reason in zip(ids, reasons):
            p, z = next(scored) if reason is None else (None, None)
            rows.append({"id": rid, "probability": p, "logit": z, "reason": reason})
        return rows

    @bentoml.api
    def predict_onehot(self, array: Path, reverse_complement_average: bool = False,
                       model: Optional[str] = None) -> dict[str, list[float]]:
        """Multipart file field `array`: a .npy one-hot (N, L, 4) or (N, 4, L), float/uint8/bool ->
        probability, logit: N floats each."""
        m = self.pick(model)
        return self._answer(m.predictor.predict_onehot(uploads.npy_onehot(array, LIMITS, m.length),
                                                       reverse_complement_average), "predict_onehot", m)

    @bentoml.api
    def predict_codes(self, codes: Path, reverse_complement_average: bool = False,
                      model: Optional[str] = None) -> dict[str, list[float]]:
        """Score codes, a byte per position (0-3 = A, C, G, T, 4 = N): multipart file `codes`, N x L bytes or a .npy
        (N, L) -> probability, logit. The same bytes as the raw body of POST /raw/predict_codes skip the multipart
        form (serving.service.routes)."""
        m = self.pick(model)
        codes = uploads.codes_upload(codes, LIMITS, m.length)
        return self._answer(m.predictor.predict_codes(codes, reverse_complement_average), "predict_codes", m)

    @bentoml.api(batchable=True, max_batch_size=BATCH_MAX_SIZE, max_latency_ms=10_000)
    def predict_one(self, sequences: BatchItems) -> list[dict[str, float]]:
        """For many concurrent small clients: each request sends one (or a few) sequences, as strings or
        {"sequence", "reverse_complement_average", "model"} objects, validated per request; BentoML's adaptive
        batching joins concurrent requests into one call per model. Returns [{probability, logit}] per sequence."""
        prob, logit = np.empty(len(sequences), np.float32), np.empty(len(sequences), np.float32)
        names = [s.model if isinstance(s, OneSequence) else None for s in sequences]
        for name in dict.fromkeys(names):
            m = self.pick(name)
            rows = np.array([n == name for n in names])
            items = [s for s, r in zip(sequences, rows) if r]
            rc = np.array([isinstance(s, OneSequence) and s.reverse_complement_average for s in items], bool)
            codes = encode_codes([item_sequence(s) for s in items], m.length, m.alphabet)
            out = m.predictor.predict_codes(codes)
            p, z = out["probability"], out["logit"]
            if rc.any():  # the reverse strands of those that ask, in one more call
                reverse = m.predictor.predict_codes(np.where(codes[rc] < 4, 3 - codes[rc], 4)[:, ::-1].copy())
                both = average_strands(z[rc], reverse["logit"])
                p[rc], z[rc] = both["probability"], both["logit"]
            prob[rows], logit[rows] = p, z
            metrics.scored(len(codes), "predict_one", m.name)
        return [{"probability": p, "logit": z} for p, z in zip(prob.tolist(), logit.tolist())]

    # ------------------------------------------------------- long sequences, variants, mutagenesis
    def _scan(self, m: Served, sequence: str, name: str, index: int | None, stride: int, threshold: float,
              short: str, rc: bool, budget: int) -> dict[str, Any]:
        """Scan one record with model m -> serving.scoring.scan.result_dict; at most `budget` windows, else 413."""
        n = len(sequence)
        windows = scan_mod.n_windows(n, m.length, stride) if n >= m.length else 1
        if windows > budget:
            raise limits_mod.TooLarge(f"{name}: {n} bp at stride {stride} is {windows} windows; the limit is "
                                      f"{LIMITS.scan_windows.value} per request (server setting "
                                      f"{LIMITS.scan_windows.env}); {LIMITS.scan_windows.advice}")
        try:
            result = scan_mod.scan_sequence(m.predictor, sequence, stride, short, rc, rid=name, index=index)
        except SequenceError as exc:
            raise InvalidArgument(str(exc) if index is not None else f"{name}: {exc.reason}") from None
        metrics.scanned(windows)
        return scan_mod.result_dict(result, parse_region(name, n), threshold)

    @bentoml.api
    def scan(self, sequence: str, id: str = "sequence", stride: Stride = 1, threshold: Threshold = 0.5,
             short: Short = "reject", reverse_complement_average: bool = False,
             model: Optional[str] = None) -> dict[str, Any]:
        """One long sequence -> every window of the model's length at `stride`: start, end (BED-style,
        genome coordinates when `id` is `chrom:start-end`), probability, logit; and `sites`: windows with
        probability >= threshold, overlapping ones merged (max score). Shorter sequences: 400, or with
        short="pad" padded with N to one window."""
        return self._scan(self.pick(model), sequence, id, None, stride, threshold, short,
                          reverse_complement_average, LIMITS.scan_windows.value)

    @bentoml.api
    def scan_fasta(self, fasta: Path, stride: Stride = 1, threshold: Threshold = 0.5, short: Short = "reject",
                   reverse_complement_average: bool = False, model: Optional[str] = None) -> list[dict[str, Any]]:
        """Multipart `fasta` (plain or gzip) -> one /scan result per record, in file order."""
        out, budget, m = [], LIMITS.scan_windows.value, self.pick(model)
        for i, record in enumerate(uploads.fasta_records(fasta, LIMITS)):
            result = self._scan(m, record.sequence, record.id, i, stride, threshold, short,
                                reverse_complement_average, budget)
            budget -= len(result["probability"])
            out.append(result)
        return out

    @bentoml.api
    @explainer_link.answers_503  # explain without an explainer: 503 naming BINDCNN_EXPLAINER_URL
    async def variants(self, sequence: str, variants: list[VariantIn], id: str = "sequence",
                       reverse_complement_average: bool = False, explain: bool = False,
                       model: Optional[str] = None) -> list[dict[str, Any]]:
        """A reference sequence and variants (1-based pos of the first ref base in `sequence`, ref, alt)
        -> per variant: ref/alt probability and logit, delta = alt - ref, its p_value against the model's null
        of random substitutions (null without one), and `status` ("ok", or why it was not scored, e.g. a ref
        that does not match the sequence). Windows of the model's length are centred on each variant.
        explain: true adds `explain` per variant: the attribution (L, 4) of its ref and alt windows and their
        difference (alt - ref), from the explainer (serving.scoring.variant_explain); null where not scored."""
        import asyncio

        from serving.scoring import variant_explain

        if not variants:
            raise InvalidArgument("no variants given")
        m = self.pick(model)
        LIMITS.variants.check(len(variants))
        try:
            to_codes(sequence, None, m.alphabet)
        except SequenceError as exc:
            raise InvalidArgument(str(exc)) from None
        parsed = var.in_sequence(sequence, variants, id, m.length)
        rows = await asyncio.to_thread(lambda: var.effect_rows(parsed, var.variant_effects(
            m.predictor, parsed, reverse_complement_average)))
        if explain:
            index, windows = variant_explain.explain_windows(parsed)
            LIMITS.saliency_sequences.check(len(windows), "explain: the ref and alt windows of the scored variants")
            answer = await self.link.call("saliency", sequences=windows, model=m.name) if windows else {
                "method": None, "scores": np.zeros((0, m.length, 4)), "convergence_delta": None}
            variant_explain.explained_rows(rows, index, np.asarray(answer["scores"], np.float32), answer["method"],
                                           answer["convergence_delta"])
        return rows

    def _mutagenesis(self, m: Served, sequence: str, rc: bool) -> tuple[np.ndarray, float]:
        try:
            return mut.saturation_mutagenesis(m.predictor, sequence, rc)
        except SequenceError as exc:
            raise InvalidArgument(str(exc)) from None

    @bentoml.api
    def mutagenesis(self, sequence: str, reverse_complement_average: bool = False,
                    model: Optional[str] = None) -> dict[str, Any]:
        """In silico saturation mutagenesis of one sequence of the model's length: delta_logit (L, 4) =
        logit(base b at position i) - logit(sequence), 0 at the reference base."""
        m = self.pick(model)
        delta, ref_logit = self._mutagenesis(m, sequence, reverse_complement_average)
        return {"ref_logit": ref_logit, "alphabet": m.alphabet, "delta_logit": delta.tolist()}

    @bentoml.api
    @explainer_link.answers_503  # no matplotlib here: 503 saying what to install
    def mutagenesis_logo(self, sequence: str, ctx: bentoml.Context, reverse_complement_average: bool = False,
                         model: Optional[str] = None) -> PNG:
        """One sequence -> its mutagenesis as a PNG: the reference bases scaled by their importance (minus the mean
        logit change of substituting them) over a heat map of every substitution's logit change."""
        if not explainer_link.installed("matplotlib"):
            raise explainer_link.Unavailable("logos need matplotlib, not installed in this predictor: "
                                             f"{explainer_link.INSTALL_EXPLAIN}, or ask /mutagenesis for the numbers")
        m = self.pick(model)
        delta, _ = self._mutagenesis(m, sequence, reverse_complement_average)
        path = Path(ctx.temp_dir) / "mutagenesis.png"  # BentoML removes the request's folder after the answer
        mut.plot_mutagenesis(delta, sequence, path, alphabet=m.alphabet)
        return path

    # ---------------------------------------------------------------------- saliency (explainer worker)
    async def __is_ready__(self) -> bool:
        """/readyz: the model is loaded (or __init__ would have failed) and an in-process explainer has answered."""
        return await self.link.ready()

    def _check_text(self, m: Served, sequences: list[str], limit: limits_mod.Limit) -> None:
        """Validate for model m without encoding (the explainer encodes), or 400/413."""
        from serving.dna import check_sequences

        limit.check(len(sequences))
        try:
            check_sequences(sequences, m.length, m.alphabet)
        except SequenceError as exc:
            metrics.note_reject(metrics.sequence_reason(exc))
            raise InvalidArgument(str(exc)) from None

    @bentoml.api
    @explainer_link.answers_503  # no explainer: 503 naming BINDCNN_EXPLAINER_URL
    async def saliency(self, sequences: list[str], corrected: Optional[bool] = None,
                       method: Optional[AttributionMethod] = None, model: Optional[str] = None) -> dict[str, Any]:
        """sequences: N strings -> scores: (N, L, 4) attribution of the logit at each observed base (TensorFlow),
        the same for a sequence in any row or request; method: the one used; convergence_delta: N floats for
        expected_gradients (each map's completeness gap |sum of scores - (logit - mean reference logit)|), else null.
        method: expected_gradients (default), gradient or corrected; corrected true/false (older): corrected/gradient.
        """
        m = self.pick(model)
        self._check_text(m, sequences, LIMITS.saliency_sequences)
        method = attribution_method(method, corrected)
        answer = await self.link.call("saliency", sequences=sequences, method=method, model=m.name)
        return {"method": answer["method"], "scores": answer["scores"],
                "convergence_delta": answer["convergence_delta"]}

    @bentoml.api
    @explainer_link.answers_503
    async def saliency_logo(self, sequence: str, ctx: bentoml.Context, corrected: Optional[bool] = None,
                            method: Optional[AttributionMethod] = None, model: Optional[str] = None) -> PNG:
        """One sequence -> its attribution (method and corrected as /saliency) as a sequence logo (PNG)."""
        m = self.pick(model)
        self._check_text(m, [sequence], LIMITS.saliency_sequences)
        method = attribution_method(method, corrected)
        path = Path(ctx.temp_dir) / "saliency.png"  # BentoML removes the request's folder after the answer
        path.write_bytes(base64.b64decode(await self.link.call("logo", sequence=sequence, method=method,
                                                                model=m.name)))
        return path

    @bentoml.api(route="/models")
    def models(self) -> list[dict[str, Any]]:
        """The served models, the default first: a card each (name, version, factor and matrix, training data, test
        AUROC/AUPR against the PWM baseline, parity, input length; serving.cards) and its execution provider
        (GET or POST)."""
        return self.model_cards()

    def model_cards(self) -> list[dict[str, Any]]:
        """/models' answer (POST here, GET in serving.service.routes)."""
        from serving.cards import model_card

        return [{**model_card(m.metadata), "default": i == 0, "provider": m.predictor.providers[0]}
                for i, m in enumerate(self.served.values())]

    @bentoml.api(route="/model")
    async def model_info(self) -> dict[str, Any]:
        """The model's metadata.json, the active execution providers and versions (GET or POST)."""
        return await self.describe()

    async def describe(self) -> dict[str, Any]:
        """/model's answer (POST here, GET in serving.service.routes)."""
        explainer = await self.link.describe()  # never raises: a down explainer must not hide the predictor
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


# Two middlewares, the outer first: 4xx bodies as documented ({"error": ...}) and counted; then the body cap and
# the checks that turn malformed uploads into 400s instead of BentoML's 500s.
BindCNN.add_asgi_middleware(ErrorAnswers)
BindCNN.add_asgi_middleware(RequestGuard, max_body_bytes=LIMITS.upload_bytes.value, body_env=LIMITS.upload_bytes.env,
                            file_fields=file_routes(BindCNN))
BindCNN.mount_asgi_app(routes.make_app(lambda: BindCNN.openapi_spec.asdict(),
                                       package_versions(("bindcnn",))["bindcnn"]), path="/")
