"""The HTTP service (`bentoml serve` from the repository root; bentofile.yaml points here): binding
predictions with ONNX Runtime in this worker, saliency from the TensorFlow explainer in its own worker.

This module and its worker never import TensorFlow (/model reports `tensorflow_loaded`). Endpoints:
/predict, /predict_fasta, /predict_onehot, /predict_one (adaptive batching), /saliency,
/saliency_logo, /scan, /scan_fasta, /variants, /mutagenesis, /mutagenesis_logo, /model; BentoML adds /livez, /readyz, /metrics, /docs.json and the Swagger UI at /.
"""
from __future__ import annotations

import base64
import dataclasses
import logging
import os
import platform
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import bentoml
import numpy as np
from bentoml.exceptions import BentoMLException, InvalidArgument, ServiceUnavailable
from bentoml.validators import ContentType
from pydantic import AfterValidator, BaseModel, Field

from serving import limits as limits_mod
from serving import scan as scan_mod
from serving import variants as variants_mod
from serving.artifact import ONNX_FILE
from serving.encoding import SequenceError, check_onehot, encode, to_codes
from serving.explainer import MODEL_TAG, Explainer, StoreModel, model_dir_of
from serving.fasta import FastaError, Record, read_fasta
from serving.http_guard import RequestGuard
from serving.openapi import ErrorBodyMiddleware, document_validation_errors
from serving.predictor import Predictor

log = logging.getLogger("bentoml.bindcnn.service")

LIMITS = limits_mod.from_env()
BATCH_MAX_SIZE = 256  # sequences per adaptive batch of /predict_one
BATCH_MAX_LATENCY_MS = 1000  # FACTS.md: 20 ms gave 503s under 16 clients, 1000 none


class TooLarge(BentoMLException):
    """A request beyond a configured limit: 413 with the message."""

    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


# The model's input spec, set by BindCNN.__init__ in this worker; read by the per-request validator of
# /predict_one (a batch must be valid as a whole, so its items are checked before they are batched).
_SPEC: dict[str, Any] = {}


class OneSequence(BaseModel):
    """A /predict_one item with options; a plain string is the same with the defaults."""

    sequence: str
    reverse_complement_average: bool = False


def _check_items(items: list[Union[str, OneSequence]]) -> list[Union[str, OneSequence]]:
    if not items:
        raise ValueError("no sequences given")
    if _SPEC:
        seqs = [s if isinstance(s, str) else s.sequence for s in items]
        try:
            encode(seqs, _SPEC["length"], _SPEC["alphabet"])
        except SequenceError as exc:
            raise ValueError(str(exc)) from None
    return items


class VariantIn(BaseModel):
    """A /variants item: 1-based position of the first ref base in the request's sequence."""

    pos: int = Field(ge=1)
    ref: str = Field(min_length=1, max_length=1000)
    alt: str = Field(min_length=1, max_length=1000)
    id: str = ""


BatchItems = Annotated[
    list[Union[str, OneSequence]],
    Field(max_length=BATCH_MAX_SIZE),
    AfterValidator(_check_items),
]


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
        _SPEC.update(length=self.length, alphabet=self.alphabet)
        log.info("bindcnn: model %s:%s from %s on ONNX Runtime providers %s; tensorflow imported: %s",
                 self.metadata["name"], self.metadata["version"], self.model_dir, self.predictor.providers,
                 "tensorflow" in sys.modules)

    # ---------------------------------------------------------------- input checks (all raise 400/413)
    def _check_count(self, n: int, limit: int | None = None) -> None:
        limit = limit or LIMITS.max_sequences
        if n > limit:
            env = limits_mod.MAX_SALIENCY_ENV if limit != LIMITS.max_sequences else limits_mod.MAX_SEQUENCES_ENV
            raise TooLarge(f"{n} sequences in one request; the limit is {limit} (server setting {env}); "
                           "split the input into several requests")

    def _encode(self, sequences: list[str], limit: int | None = None) -> np.ndarray:
        """sequences: N strings -> x: (N, L, 4) float32, or 400 naming the index/position/character."""
        self._check_count(len(sequences), limit)
        try:
            return encode(sequences, self.length, self.alphabet)
        except SequenceError as exc:
            raise InvalidArgument(str(exc)) from None

    def _fasta_records(self, path: Path) -> list[Record]:
        """A FASTA upload (plain or gzip) -> its records (at most the sequence limit), or 400/413."""
        records = []
        try:
            for record in read_fasta(path, max_bytes=LIMITS.max_upload_bytes):
                records.append(record)
                self._check_count(len(records))
        except FastaError as exc:
            if "larger than" in str(exc):
                raise TooLarge(f"FASTA upload: {exc} (server setting {limits_mod.MAX_UPLOAD_BYTES_ENV})") from None
            raise InvalidArgument(f"FASTA upload: {exc}") from None
        if not records:
            raise InvalidArgument("FASTA upload: the file holds no records (expected '>id' lines followed by "
                                  "sequence lines)")
        return records

    def _read_fasta(self, path: Path) -> tuple[list[str], np.ndarray]:
        """A FASTA upload (plain or gzip) -> record ids (N,), x: (N, L, 4) float32."""
        records = self._fasta_records(path)
        ids, seqs = [r.id for r in records], [r.sequence for r in records]
        try:
            return ids, encode(seqs, self.length, self.alphabet)
        except SequenceError as exc:
            i = exc.index or 0
            detail = str(exc).split(": ", 1)[-1]
            raise InvalidArgument(f"FASTA record {i + 1} (id {ids[i]!r}): {detail}") from None

    def _read_npy(self, path: Path) -> np.ndarray:
        """A .npy upload -> x: (N, L, 4) float32 (also accepts (N, 4, L); never unpickles)."""
        with open(path, "rb") as fh:
            magic = fh.read(6)
        if magic != b"\x93NUMPY" and not magic.startswith(b"PK\x03\x04"):
            raise InvalidArgument("array upload: not a readable .npy file (it does not start with the .npy "
                                  "magic bytes; write it with numpy.save)")
        try:
            # mmap: the header's shape is checked against the file size before any data is read.
            raw = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:  # any failure to read the client's file is the client's problem
            if "Python objects" in str(exc) or "pickle" in str(exc):
                raise InvalidArgument("array upload: object arrays (pickled Python objects) are refused; send a "
                                      "numeric .npy (float32, float64, uint8 or bool)") from None
            raise InvalidArgument(f"array upload: not a readable .npy file ({exc})") from None
        if not isinstance(raw, np.ndarray):
            if hasattr(raw, "close"):
                raw.close()
            raise InvalidArgument("array upload: expected one .npy array, got an .npz archive")
        if raw.ndim >= 1 and raw.ndim != 2:
            self._check_count(raw.shape[0])
        try:
            return check_onehot(raw, self.length)
        except ValueError as exc:
            raise InvalidArgument(f"array upload: {exc}") from None
        finally:
            del raw

    def _scores(self, x: np.ndarray, reverse_complement_average: bool) -> dict[str, list[float]]:
        out = self.predictor.predict_onehot(x, reverse_complement_average)
        return {"probability": out["probability"].tolist(), "logit": out["logit"].tolist()}

    # ------------------------------------------------------------------------------------ endpoints
    @bentoml.api
    def predict(self, sequences: list[str], reverse_complement_average: bool = False) -> dict[str, list[float]]:
        """sequences: N strings of the model's length (ACGTN, any case) -> probability, logit: N floats each."""
        return self._scores(self._encode(sequences), reverse_complement_average)

    @bentoml.api
    def predict_fasta(self, fasta: Path, reverse_complement_average: bool = False) -> list[dict[str, Any]]:
        """Multipart file field `fasta` (plain or gzip FASTA) -> [{id, probability, logit}] per record."""
        ids, x = self._read_fasta(fasta)
        out = self.predictor.predict_onehot(x, reverse_complement_average)
        return [{"id": rid, "probability": p, "logit": z}
                for rid, p, z in zip(ids, out["probability"].tolist(), out["logit"].tolist())]

    @bentoml.api
    def predict_onehot(self, array: Path, reverse_complement_average: bool = False) -> dict[str, list[float]]:
        """Multipart file field `array`: a .npy one-hot (N, L, 4) or (N, 4, L), float/uint8/bool ->
        probability, logit: N floats each."""
        return self._scores(self._read_npy(array), reverse_complement_average)

    @bentoml.api(batchable=True, max_batch_size=BATCH_MAX_SIZE, max_latency_ms=BATCH_MAX_LATENCY_MS)
    def predict_one(self, sequences: BatchItems) -> list[dict[str, float]]:
        """For many concurrent small clients: each request sends one (or a few) sequences, as strings or
        {"sequence", "reverse_complement_average"} objects; concurrent requests share one ONNX batch.
        Returns [{probability, logit}] per sequence."""
        seqs = [s if isinstance(s, str) else s.sequence for s in sequences]
        rc = np.array([not isinstance(s, str) and s.reverse_complement_average for s in sequences], bool)
        x = encode(seqs, self.length, self.alphabet)  # already validated per request
        out = self.predictor.predict_onehot(x)
        prob, logit = out["probability"], out["logit"]
        if rc.any():
            both = self.predictor.predict_onehot(x[rc], reverse_complement_average=True)
            prob[rc], logit[rc] = both["probability"], both["logit"]
        return [{"probability": p, "logit": z} for p, z in zip(prob.tolist(), logit.tolist())]

    # ------------------------------------------------------- long sequences, variants, mutagenesis
    def _scan(self, sequence: str, name: str, index: int | None, stride: int, threshold: float, short: str,
              rc: bool, budget: int) -> dict[str, Any]:
        """Scan one record (serving.scan) -> its windows in genome coordinates where the id says
        `chrom:start-end`, and the called sites; at most `budget` windows, else 413."""
        windows = scan_mod.n_windows(len(sequence), self.length, stride) if len(sequence) >= self.length else 1
        if windows > budget:
            raise TooLarge(f"{name}: {len(sequence)} bp at stride {stride} is {windows} windows; the limit is "
                           f"{LIMITS.max_scan_windows} per request (server setting {limits_mod.MAX_SCAN_WINDOWS_ENV}); "
                           "use a larger stride or split the sequence")
        try:
            result = scan_mod.scan_sequence(self.predictor, sequence, stride, short, rc, rid=name, index=index)
        except SequenceError as exc:
            raise InvalidArgument(str(exc) if index is not None else f"{name}: {str(exc).split(': ', 1)[-1]}") from None
        region = scan_mod.parse_region(name, len(sequence))
        lo = np.maximum(result.starts, 0) + region.offset
        hi = result.window_ends() + region.offset
        return {
            "id": name, "chrom": region.chrom, "offset": region.offset, "length": len(sequence),
            "window": self.length, "stride": stride, "padded": result.padded,
            "start": lo.tolist(), "end": hi.tolist(),
            "probability": result.probability.tolist(), "logit": result.logit.tolist(),
            "sites": [{"chrom": region.chrom, "start": a + region.offset, "end": b + region.offset,
                       "probability": p, "logit": z} for a, b, p, z in scan_mod.call_sites(result, threshold)],
        }

    @bentoml.api
    def scan(self, sequence: str, id: str = "sequence", stride: Annotated[int, Field(ge=1)] = 1,
             threshold: Annotated[float, Field(ge=0, le=1)] = 0.5, short: Literal["reject", "pad"] = "reject",
             reverse_complement_average: bool = False) -> dict[str, Any]:
        """One long sequence -> every window of the model's length at `stride`: start, end (BED-style,
        genome coordinates when `id` is `chrom:start-end`), probability, logit; and `sites`: windows with
        probability >= threshold, overlapping ones merged (max score). Shorter sequences: 400, or with
        short="pad" padded with N to one window."""
        return self._scan(sequence, id, None, stride, threshold, short, reverse_complement_average,
                          LIMITS.max_scan_windows)

    @bentoml.api
    def scan_fasta(self, fasta: Path, stride: Annotated[int, Field(ge=1)] = 1,
                   threshold: Annotated[float, Field(ge=0, le=1)] = 0.5, short: Literal["reject", "pad"] = "reject",
                   reverse_complement_average: bool = False) -> list[dict[str, Any]]:
        """Multipart `fasta` (plain or gzip) -> one /scan result per record, in file order."""
        out, budget = [], LIMITS.max_scan_windows
        for i, record in enumerate(self._fasta_records(fasta)):
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
        if len(variants) > LIMITS.max_variants:
            raise TooLarge(f"{len(variants)} variants in one request; the limit is {LIMITS.max_variants} "
                           f"(server setting {limits_mod.MAX_VARIANTS_ENV})")
        try:
            to_codes(sequence, None, self.alphabet)
        except SequenceError as exc:
            raise InvalidArgument(str(exc)) from None
        parsed = []
        for v in variants:
            var = variants_mod.Variant(id, v.pos, v.ref, v.alt, v.id)
            if not set(v.ref + v.alt) <= variants_mod.ALLELE_OK:
                var.status = f"unsupported allele {v.ref!r}>{v.alt!r} (only A, C, G, T, N sequences)"
            elif v.pos > len(sequence):
                var.status = f"position {v.pos} is past the end of the {len(sequence)} bp sequence"
            else:
                variants_mod.place_variant(var, sequence, v.pos - 1, self.length, id)
            parsed.append(var)
        eff = variants_mod.variant_effects(self.predictor, parsed, reverse_complement_average)
        out = []
        for i, v in enumerate(parsed):
            row: dict[str, Any] = {"id": v.name, "pos": v.pos, "ref": v.ref, "alt": v.alt, "status": v.status}
            if v.status == "ok":
                rp, ap = float(eff["ref_probability"][i]), float(eff["alt_probability"][i])
                rl, al = float(eff["ref_logit"][i]), float(eff["alt_logit"][i])
                row.update(ref_probability=rp, alt_probability=ap, delta_probability=ap - rp,
                           ref_logit=rl, alt_logit=al, delta_logit=al - rl)
            out.append(row)
        return out

    def _mutagenesis(self, sequence: str, rc: bool) -> tuple[np.ndarray, float]:
        try:
            return variants_mod.saturation_mutagenesis(self.predictor, sequence, rc)
        except SequenceError as exc:
            raise InvalidArgument(str(exc)) from None

    @bentoml.api
    def mutagenesis(self, sequence: str, reverse_complement_average: bool = False) -> dict[str, Any]:
        """In silico saturation mutagenesis of one sequence of the model's length: delta_logit (L, 4) =
        logit(base b at position i) - logit(sequence), 0 at the reference base; all 4L mutants in one batch."""
        delta, ref_logit = self._mutagenesis(sequence, reverse_complement_average)
        return {"ref_logit": ref_logit, "alphabet": self.alphabet, "delta_logit": delta.tolist()}

    @bentoml.api
    def mutagenesis_logo(self, sequence: str, reverse_complement_average: bool = False
                         ) -> Annotated[Path, ContentType("image/png")]:
        """One sequence -> its mutagenesis as a logo PNG (logit changes mean-centred per position)."""
        import tempfile

        from starlette.responses import Response

        delta, _ = self._mutagenesis(sequence, reverse_complement_average)
        with tempfile.TemporaryDirectory() as tmp:
            png = variants_mod.plot_mutagenesis(delta, Path(tmp) / "ism.png").read_bytes()
        return Response(png, media_type="image/png")  # type: ignore[return-value]

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

    @bentoml.api
    async def saliency(self, sequences: list[str], corrected: bool = False) -> dict[str, list]:
        """sequences: N strings -> scores: (N, L, 4) grad x input of the logit (TensorFlow explainer).
        corrected: subtract each position's mean gradient over A/C/G/T first."""
        self._encode(sequences, limit=LIMITS.max_saliency_sequences)
        scores = await self._explain("saliency", sequences=sequences, corrected=corrected)
        return {"scores": np.asarray(scores, np.float32).tolist()}

    @bentoml.api
    async def saliency_logo(self, sequence: str, corrected: bool = False) -> Annotated[Path, ContentType("image/png")]:
        """One sequence -> its saliency as a logomaker sequence logo (PNG)."""
        from starlette.responses import Response

        self._encode([sequence])
        png = await self._explain("logo", sequence=sequence, corrected=corrected)
        return Response(base64.b64decode(png), media_type="image/png")  # type: ignore[return-value]

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
            "versions": _versions(),
            "limits": {**dataclasses.asdict(LIMITS), "predict_one_max_batch_size": BATCH_MAX_SIZE},
            "explainer": explainer,
        }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "numpy": np.__version__}
    for dist in ("bindcnn", "bentoml", "onnxruntime-gpu"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _file_routes(service) -> dict[str, list[str]]:
    """route -> its multipart file parameters, e.g. {'/predict_fasta': ['fasta']}."""
    return {m.route: list(m.input_spec.multipart_fields)
            for m in service.apis.values() if getattr(m.input_spec, "multipart_fields", None)}


BindCNN.add_asgi_middleware(RequestGuard, max_body_bytes=LIMITS.max_upload_bytes,
                            file_fields=_file_routes(BindCNN), get_as_post=("/model",))
BindCNN.add_asgi_middleware(ErrorBodyMiddleware)  # 4xx bodies as documented: {"error": ...}
document_validation_errors()  # /docs.json: a 400's detail may be pydantic's error list
