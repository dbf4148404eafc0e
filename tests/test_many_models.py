"""Several models in one service (BINDCNN_MODELS / `bindcnn serve --model A --model B`), here a CTCF and a REST model
trained in the test session on two built-in sets: each request is answered by
the model it names (JSON field, form field, query parameter, /predict_one item), the first served answers requests
that name none, an unknown name is a 400 naming the served ones, GET /models lists a card each, metrics carry the
model as a label."""
from __future__ import annotations

import numpy as np
import pytest

from serving.dna import encode_codes, random_dna
from serving.service.launch import Server


@pytest.fixture(scope="module")
def server(trained, rest_model):
    with Server(env={"BINDCNN_MODELS": f"{trained['tag']},{rest_model['tag']}"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def local(trained, rest_model):
    from serving.predictor import Predictor

    return {"first": Predictor(trained["dir"], device="cpu"), "second": Predictor(rest_model["dir"], device="cpu")}


SEQS = random_dna(6, 200, seed=21)


def test_each_request_is_answered_by_the_model_it_names(http, trained, rest_model, local):
    first, second = trained["meta"]["name"], rest_model["meta"]["name"]
    want1 = local["first"].predict_sequences(SEQS)["logit"]
    want2 = local["second"].predict_sequences(SEQS)["logit"]
    assert np.abs(want1 - want2).max() > 1e-3  # two different models
    default = http.post("/predict", json={"sequences": SEQS}).json()["logit"]
    np.testing.assert_allclose(default, want1, atol=1e-5)
    for name, want in ((first, want1), (second, want2)):
        got = http.post("/predict", json={"sequences": SEQS, "model": name}).json()["logit"]
        np.testing.assert_allclose(got, want, atol=1e-5)
    fasta = "".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQS)).encode()
    rows = http.post("/predict_fasta", files={"fasta": ("x.fa", fasta)}, data={"model": second}).json()
    np.testing.assert_allclose([r["logit"] for r in rows], want2, atol=1e-5)
    raw = http.post("/raw/predict_codes", params={"model": second}, content=encode_codes(SEQS).tobytes(),
                    headers={"content-type": "application/octet-stream"}).json()
    np.testing.assert_allclose(raw["logit"], want2, atol=1e-5)
    items = [{"sequence": SEQS[0], "model": second}, SEQS[1], {"sequence": SEQS[2], "model": first}]
    one = http.post("/predict_one", json={"sequences": items}).json()
    np.testing.assert_allclose([r["logit"] for r in one], [want2[0], want1[1], want1[2]], atol=1e-5)
    scan = http.post("/scan", json={"sequence": "".join(SEQS[:2]), "stride": 50, "model": second}).json()
    np.testing.assert_allclose(scan["logit"][0], want2[0], atol=1e-5)


def test_an_unknown_model_is_a_400_naming_the_served_ones(http, trained, rest_model):
    for answer in (http.post("/predict", json={"sequences": SEQS, "model": "nope"}),
                   http.post("/predict_one", json={"sequences": [{"sequence": SEQS[0], "model": "nope"}]}),
                   http.post("/raw/predict_codes", params={"model": "nope"}, content=encode_codes(SEQS).tobytes(),
                             headers={"content-type": "application/octet-stream"})):
        assert answer.status_code == 400, answer.text
        text = answer.text
        assert "nope" in text and trained["meta"]["name"] in text and rest_model["meta"]["name"] in text


def test_models_lists_a_card_each_and_metrics_carry_the_model(http, trained, rest_model):
    for method in ("GET", "POST"):
        cards = http.request(method, "/models").json()
        assert [c["name"] for c in cards] == [trained["meta"]["name"], rest_model["meta"]["name"]]
        assert [c["default"] for c in cards] == [True, False]
        assert cards[1]["version"] == rest_model["meta"]["version"]
        assert cards[0]["sequence_length"] == 200 and "test_auroc" in cards[0] and "pwm_auroc" in cards[0]
    assert http.get("/model").json()["model"]["name"] == trained["meta"]["name"]  # /model: the default
    http.post("/predict", json={"sequences": SEQS[:2], "model": rest_model["meta"]["name"]})
    metrics = http.get("/metrics").text
    assert f'model="{rest_model["meta"]["name"]}"' in metrics


def test_saliency_comes_from_the_model_named(http, rest_model):
    """The explainer (in-process here) serves the same models: a gradient map of the second model equals its own
    SavedModel's gradient x input."""
    from serving.attribution import attribute, load_logits_fn
    from serving.dna import encode

    want = attribute(load_logits_fn(rest_model["dir"]), encode(SEQS[:2]), "gradient")
    got = http.post("/saliency", json={"sequences": SEQS[:2], "method": "gradient",
                                       "model": rest_model["meta"]["name"]}).json()
    np.testing.assert_allclose(np.asarray(got["scores"]), want, atol=1e-5 * max(1.0, np.abs(want).max()))
    default = http.post("/saliency", json={"sequences": SEQS[:2], "method": "gradient"}).json()
    assert np.abs(np.asarray(default["scores"]) - want).max() > 1e-4  # the default is the other model
