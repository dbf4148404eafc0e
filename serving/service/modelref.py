"""The service's reference to its model in the BentoML store: packed by `bentoml build`, verified at start-up,
and refused with a message that says what to run when it is missing or tampered with."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import bentoml

from serving.artifact import verify_model_dir
from serving.store import model_tag, resolve

MODEL_TAG = model_tag()


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
