"""Shared fixtures: a small synthetic dataset and a tiny model trained, exported and registered once
per test session, in a private BentoML home (never the user's ~/bentoml)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before anything imports bentoml or tensorflow.
_HOME = tempfile.mkdtemp(prefix="bindcnn-test-bentoml-")
os.environ["BENTOML_HOME"] = _HOME
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

TEST_MODEL_NAME = "testctcf"
TEST_N = 4000  # sequences in the test dataset (70/10/20 split)


@pytest.fixture(scope="session")
def bentoml_home() -> Path:
    return Path(_HOME)


@pytest.fixture(scope="session")
def synthetic_h5(tmp_path_factory) -> Path:
    from training.data import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("data") / "synthetic.h5", n=TEST_N, seed=7)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, synthetic_h5, bentoml_home) -> dict:
    """{'dir': models/testctcf Path, 'meta': metadata dict, 'tag': store tag, 'data': h5 Path}."""
    from training.pipeline import train_and_export

    root = tmp_path_factory.mktemp("models")
    meta = train_and_export(synthetic_h5, TEST_MODEL_NAME, root, epochs=40, seed=0, verbose=False)
    return {"dir": root / TEST_MODEL_NAME, "meta": meta, "tag": meta["bentoml_tag"], "data": synthetic_h5}
