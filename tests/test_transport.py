"""The binary transport: /predict_codes (raw N x L code bytes or a .npy of codes, multipart) against /predict and the
in-process predictor, its 400s, its OpenAPI entry, and serving.client.HttpPredictor sending codes through it."""
from __future__ import annotations

import io

import numpy as np
import pytest

from serving.dna import encode_codes, random_dna


@pytest.fixture(scope="module")
def seqs(trained) -> list[str]:
    length = trained["meta"]["sequence_length"]
    out = random_dna(30, length, seed=5)
    out[3] = "N" * 10 + out[3][10:].lower()
    return out


def _post_codes(http, payload: bytes, name: str = "codes.bin", **form):
    return http.post("/predict_codes", files={"codes": (name, payload, "application/octet-stream")}, data=form or None)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def test_codes_as_bytes_or_npy_score_like_predict_and_in_process(http, predictor, seqs):
    codes = encode_codes(seqs, predictor.length, predictor.alphabet)
    want = predictor.predict_sequences(seqs)
    for payload in (codes.tobytes(), _npy(codes), _npy(codes.astype(np.int64))):
        got = _post_codes(http, payload)
        assert got.status_code == 200, got.text
        np.testing.assert_allclose(got.json()["logit"], want["logit"], atol=1e-5)
        np.testing.assert_allclose(got.json()["probability"], want["probability"], atol=1e-6)
    as_json = http.post("/predict", json={"sequences": seqs}).json()
    np.testing.assert_allclose(as_json["logit"], want["logit"], atol=1e-5)
    rc = _post_codes(http, codes.tobytes(), reverse_complement_average="true").json()
    np.testing.assert_allclose(rc["logit"], predictor.predict_sequences(seqs, True)["logit"], atol=1e-5)


@pytest.mark.parametrize("payload, fragments", [
    (b"\x00" * 199, ["199 bytes", "200-byte rows"]),
    (b"", ["0 bytes"]),
    (b"\x00" * 200 + b"\x07" + b"\x00" * 199, ["sequence 1", "position 1", "code 7"]),
    (_npy(np.zeros((2, 100), np.uint8)), ["(N, 200)", "(2, 100)"]),
    (_npy(np.zeros((2, 200), np.float32)), ["integer array"]),
    (_npy(np.full((1, 200), -1, np.int8)), ["code -1"]),
])
def test_bad_codes_are_400s_that_say_what_is_wrong(http, payload, fragments):
    resp = _post_codes(http, payload)
    assert resp.status_code == 400, resp.text
    for fragment in fragments:
        assert fragment in resp.text


def test_raw_body_route_answers_like_the_multipart_form(http, predictor, seqs):
    """POST /raw/predict_codes (serving/service/routes.py, a mounted Starlette app): the same scores and errors."""
    codes = encode_codes(seqs, predictor.length, predictor.alphabet)
    octet = {"content-type": "application/octet-stream"}
    form = _post_codes(http, codes.tobytes()).json()
    raw = http.post("/raw/predict_codes", content=codes.tobytes(), headers=octet)
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("application/json")
    np.testing.assert_array_equal(np.float32(raw.json()["logit"]), np.float32(form["logit"]))
    np.testing.assert_array_equal(np.float32(raw.json()["probability"]), np.float32(form["probability"]))
    rc = http.post("/raw/predict_codes", params={"reverse_complement_average": "true"}, content=codes.tobytes(),
                   headers=octet).json()
    np.testing.assert_allclose(rc["logit"], predictor.predict_sequences(seqs, True)["logit"], atol=1e-5)
    bad = http.post("/raw/predict_codes", content=b"\x09" * 200, headers=octet)
    assert bad.status_code == 400 and "code 9" in bad.json()["error"]
    short = http.post("/raw/predict_codes", content=b"\x00" * 10, headers=octet)
    assert short.status_code == 400 and "10 bytes" in short.json()["error"]
    # the BentoML endpoint takes only its multipart form (the guard's 415 says so)
    assert http.post("/predict_codes", content=codes.tobytes(), headers=octet).status_code == 415


def test_predict_codes_is_documented(http):
    doc = http.get("/docs.json").json()
    op = doc["paths"]["/predict_codes"]["post"]
    assert "multipart/form-data" in op["requestBody"]["content"]
    assert "codes" in str(op["requestBody"]) and (op.get("summary") or op.get("description"))
    assert "example.fa" not in op["description"]  # a FASTA is no codes upload
    raw = doc["paths"]["/raw/predict_codes"]["post"]
    assert set(raw["requestBody"]["content"]) == {"application/octet-stream"}
    assert [p["name"] for p in raw["parameters"] if p["in"] == "query"] == ["reverse_complement_average", "model"]


def test_http_predictor_sends_codes_and_matches_local(server, predictor, seqs):
    from serving.client import RAW_CODES, HttpPredictor

    sent = []
    with HttpPredictor(server.url, batch_size=7, workers=3) as remote:
        remote.client.event_hooks["request"].append(lambda request: sent.append(
            (request.url.path, request.headers["content-type"], len(request.content))))
        got = remote.predict_sequences(seqs)
        codes = encode_codes(seqs, predictor.length, predictor.alphabet)
        onehot = remote.predict_onehot(predictor_onehot(codes), reverse_complement_average=True)
    # 30 sequences in requests of 7 (the last of 2), twice, each as its code bytes
    sizes = [7 * predictor.length] * 4 + [2 * predictor.length]
    assert sorted(sent) == sorted([(RAW_CODES, "application/octet-stream", n) for n in sizes] * 2)
    np.testing.assert_allclose(got["logit"], predictor.predict_sequences(seqs)["logit"], atol=1e-5)
    np.testing.assert_allclose(onehot["logit"], predictor.predict_sequences(seqs, True)["logit"], atol=1e-5)


def test_http_predictor_retries_a_5xx_and_reports_a_refusal(server, predictor, seqs):
    """A 503 (a worker restarting, BentoML's "overloaded") is sent again; a 400 is the caller's error at once."""
    import httpx

    from serving.client import RAW_CODES, HttpPredictor, ServiceError

    answers = [httpx.Response(503, text="overloaded"), None]  # the first attempt refused, the next one passed on

    def flaky(request):
        answer = answers.pop(0) if answers else None
        if answer is None:
            return forward.handle_request(request)
        return answer

    with HttpPredictor(server.url, length=predictor.length, alphabet=predictor.alphabet, workers=1,
                       backoff=0.01) as remote:
        forward = httpx.HTTPTransport()
        remote.client = httpx.Client(base_url=server.url, transport=httpx.MockTransport(flaky))
        got = remote.predict_sequences(seqs)
        assert not answers  # both used: one retry
        np.testing.assert_allclose(got["logit"], predictor.predict_sequences(seqs)["logit"], atol=1e-5)
        with pytest.raises(ServiceError, match=r"refused the request \(HTTP 400\).*code 9") as info:
            remote.predict_codes(np.full((1, predictor.length), 9, np.uint8))
        assert info.value.status == 400 and RAW_CODES in str(info.value)


def predictor_onehot(codes: np.ndarray) -> np.ndarray:
    from serving.dna import codes_to_onehot

    return codes_to_onehot(codes)
