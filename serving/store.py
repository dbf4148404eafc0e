"""The BentoML model store side of an exported model: register models/<name>/ as <name>:<version>
(what `bentoml build` packs into a Bento), and resolve a tag back to a verified directory."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from serving.artifact import ONNX_FILE, SAVED_MODEL_DIR, ArtifactError, read_metadata, verify_model_dir

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$")
DEFAULT_MODEL_NAME = "ctcf"  # the ONE default: models/ctcf, ctcf:latest in the store
DEFAULT_MODEL_TAG = f"{DEFAULT_MODEL_NAME}:latest"
DEFAULT_MODEL_DIR = f"models/{DEFAULT_MODEL_NAME}"
MODEL_ENV = "BINDCNN_MODEL"  # the tag the service loads
MODELS_ENV = "BINDCNN_MODELS"  # several tags, comma-separated: the service serves them side by side


def check_name(name: str) -> str:
    if not NAME_RE.match(name) or len(name) > 63:
        raise ValueError(
            f"model name {name!r} is not valid: use lowercase letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (at most 63 characters)"
        )
    return name


def register(model_dir: str | os.PathLike) -> str:
    """Copy a verified models/<name>/ into the BentoML model store as <name>:<version>.

    Idempotent: a tag already in the store with the same files is left as it is. Returns the tag."""
    import bentoml
    from bentoml.exceptions import NotFound

    meta = verify_model_dir(model_dir, need=(ONNX_FILE, SAVED_MODEL_DIR))
    tag = f"{meta['name']}:{meta['version']}"
    try:
        existing = bentoml.models.get(tag)
    except NotFound:
        existing = None
    if existing is not None:
        if read_metadata(existing.path).get("files") == meta["files"]:
            return tag
        raise ArtifactError(f"{tag} is already in the BentoML store with different files; "
                            f"delete it with: bentoml models delete {tag} -y")
    summary = {"sequence_length": meta["sequence_length"], "alphabet": meta["alphabet"],
               **{f"test_{k}": v for k, v in meta.get("metrics", {}).get("test", {}).items()}}
    with bentoml.models.create(tag, labels={"project": "bindcnn"}, metadata=summary) as bento_model:
        shutil.copytree(model_dir, bento_model.path, dirs_exist_ok=True)
    return tag


def model_tag() -> str:
    """The tag the service serves by default: the first of model_tags()."""
    return model_tags()[0]


def model_tags() -> list[str]:
    """The tags the service serves, the default first: $BINDCNN_MODELS (comma-separated, e.g. "ctcf,rest"), else
    $BINDCNN_MODEL, else ctcf:latest. A name without a version means its latest; a name given twice is refused."""
    raw = os.environ.get(MODELS_ENV) or os.environ.get(MODEL_ENV) or DEFAULT_MODEL_TAG
    tags = [t.strip() if ":" in t else f"{t.strip()}:latest" for t in raw.split(",") if t.strip()]
    names = [t.split(":")[0] for t in tags]
    dup = sorted({n for n in names if names.count(n) > 1})
    if not tags or dup:
        raise ValueError(f"{MODELS_ENV}={raw!r}: " + (f"{', '.join(dup)} given twice" if dup else "no model named"))
    return tags


def resolve(tag: str | None = None) -> Path:
    """The store directory of `tag` (default: $BINDCNN_MODEL or ctcf:latest). Raises ArtifactError
    saying what to run when the model is not in the store."""
    import bentoml
    from bentoml.exceptions import BentoMLException, NotFound

    tag = tag or model_tag()
    try:
        return Path(bentoml.models.get(tag).path)
    except (NotFound, BentoMLException, ValueError) as exc:
        name = tag.split(":")[0]
        raise ArtifactError(
            f"model {tag!r} is not in the BentoML model store ({exc}). Train and register it with: "
            f"bindcnn train --name {name}   (or, for an existing models/{name}/: "
            f"bindcnn register --model models/{name})"
        ) from exc
