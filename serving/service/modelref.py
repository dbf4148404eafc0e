"""The service's references to its models in the BentoML store ($BINDCNN_MODELS, the default first): packed by
`bentoml build`, verified at start-up, refused with a message that says what to run when missing or tampered with,
and loaded side by side as Served models, each with its own predictor."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml

from serving.artifact import verify_model_dir
from serving.store import model_tags, resolve

MODEL_TAGS = model_tags()
MODEL_TAG = MODEL_TAGS[0]  # the default model: answers a request that names none


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


@dataclass
class Served:
    """One served model: name (the store name, what requests say in `model`), tag (name:version), its verified
    store folder and metadata.json, and its predictor (ONNX Runtime)."""

    name: str
    tag: str
    model_dir: Path
    metadata: dict[str, Any]
    predictor: Any

    @property
    def length(self) -> int:
        return self.predictor.length

    @property
    def alphabet(self) -> str:
        return self.predictor.alphabet


def load_served(refs: list[bentoml.models.BentoModel], threads: int) -> dict[str, Served]:
    """name -> Served for each reference, in order (the default first); each predictor on `threads` threads."""
    from serving.artifact import ONNX_FILE
    from serving.predictor import Predictor

    out: dict[str, Served] = {}
    for ref in refs:
        path, metadata = model_dir_of(ref, need=(ONNX_FILE,))
        predictor = Predictor(path, verify=False, threads=threads)  # verified just above
        out[metadata["name"]] = Served(metadata["name"], f"{metadata['name']}:{metadata['version']}", path, metadata,
                                       predictor)
    return out
