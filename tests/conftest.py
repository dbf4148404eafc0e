"""Shared fixtures: a small synthetic dataset and a tiny model trained, exported and registered once per test
session, in a private BentoML home (never the user's ~/bentoml); a real server of it and an HTTP client on it (a
module with its own limits defines its own `server`)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before anything imports bentoml or tensorflow. Idempotent: a test module that imports tests.conftest (for
# ToyPredictor) must not give the session a second BentoML home.
_HOME = os.environ.get("BINDCNN_TEST_BENTOML_HOME") or tempfile.mkdtemp(prefix="bindcnn-test-bentoml-")
os.environ["BINDCNN_TEST_BENTOML_HOME"] = os.environ["BENTOML_HOME"] = _HOME
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

TEST_MODEL_NAME = "testctcf"
TEST_N = 4000  # sequences in the test dataset (70/10/20 split)


def pytest_sessionfinish(session, exitstatus):
    """Leave nothing in the temp folder: the private BentoML home goes with the session."""
    import shutil

    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def bentoml_home() -> Path:
    return Path(_HOME)


@pytest.fixture(scope="session")
def synthetic_h5(tmp_path_factory) -> Path:
    from training.datasets.synthetic import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("data") / "synthetic.h5", n=TEST_N, seed=7)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, synthetic_h5, bentoml_home) -> dict:
    """{'dir': models/testctcf Path, 'meta': metadata dict, 'tag': store tag, 'data': h5 Path}."""
    from training.pipeline import train_and_export

    root = tmp_path_factory.mktemp("models")
    meta = train_and_export(synthetic_h5, TEST_MODEL_NAME, root, epochs=40, seed=0, verbose=False)
    return {"dir": root / TEST_MODEL_NAME, "meta": meta, "tag": meta["bentoml_tag"], "data": synthetic_h5}


REST_MODEL_NAME = "testrest"
SECOND_MOTIF = "MA0138"  # REST: a second factor's built-in set (issue 26)


@pytest.fixture(scope="session")
def rest_model(trained) -> dict:
    """A second factor's model (REST, JASPAR MA0138 planted in the built-in set), trained only when a test asks,
    exported beside `trained` (same models folder) and registered: {'dir', 'meta', 'tag', 'data'}."""
    from training.datasets.jaspar import fetch_jaspar
    from training.datasets.synthetic import write_synthetic
    from training.pipeline import train_and_export

    root = trained["dir"].parent
    data = write_synthetic(trained["data"].parent / "rest.h5", n=TEST_N, seed=8, matrix=fetch_jaspar(SECOND_MOTIF))
    meta = train_and_export(data, REST_MODEL_NAME, root, epochs=15, seed=0, verbose=False)
    return {"dir": root / REST_MODEL_NAME, "meta": meta, "tag": meta["bentoml_tag"], "data": data}


@pytest.fixture(scope="session")
def predictor(trained):
    """The trained test model on ONNX Runtime, CPU."""
    from serving.predictor import Predictor

    return Predictor(trained["dir"], device="cpu")


@pytest.fixture(scope="module")
def server(trained):
    """A real `bentoml serve` of the test model with default limits (test modules with limits override it)."""
    from serving.service.launch import Server

    with Server(env={"BINDCNN_MODEL": trained["tag"]}) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server):
    """An httpx client on the module's `server` (this file's default one, or a module's own with its limits)."""
    import httpx

    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


class ToyPredictor:
    """A predictor-like toy without a model (window `length`, default 10): probability = fraction of C in the
    window, logit = 10 * it, so tests can put high windows exactly where they want. Records batch sizes."""

    alphabet = "ACGT"
    prefers_strings = False

    def __init__(self, length: int = 10):
        self.length = length
        self.batches: list[int] = []

    def predict_onehot(self, x, reverse_complement_average: bool = False):
        import numpy as np

        self.batches.append(len(x))
        p = np.asarray(x)[:, :, 1].mean(axis=1).astype(np.float32)
        return {"probability": p, "logit": 10 * p}


@pytest.fixture
def toy_predictor() -> ToyPredictor:
    return ToyPredictor()
