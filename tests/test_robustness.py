"""The service against inputs found by a machine (schemathesis on its own OpenAPI schema) and a hand-written
hostile corpus, through a real `bentoml serve`: never a 5xx, a precise 4xx each, and it keeps serving."""
from __future__ import annotations

import gzip
import io
import json
import zlib

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from serving.service.launch import Server

MAX_SEQUENCES = 2000
MAX_UPLOAD = 8 * 1024 * 1024  # a million tiny sequences (5 MB of JSON) reach the count cap
MAX_SALIENCY = 4
FUZZ_EXAMPLES = 30  # per operation; bounded so the module stays well under a minute


@pytest.fixture(scope="module")
def server(trained):
    with Server.for_model(trained["tag"], max_sequences=MAX_SEQUENCES, max_upload_bytes=MAX_UPLOAD,
                          max_saliency_sequences=MAX_SALIENCY) as srv:
        yield srv


@pytest.fixture(scope="module")
def good(trained) -> str:
    from serving.dna import decode
    from training.datasets import load_h5

    return decode(load_h5(trained["data"]).x["test"][:1])[0]


def still_serving(http, good: str) -> None:
    r = http.post("/predict", json={"sequences": [good]})
    assert r.status_code == 200 and len(r.json()["probability"]) == 1, r.text


# ----------------------------------------------------------------------------------------- schemathesis
def _own_schema() -> dict:
    """The service's OpenAPI document as BentoML generates it (what it serves at /docs.json; see the test
    below). Built at import so schemathesis makes one test per operation (its lazy from_fixture loader
    does not run under pytest 9)."""
    from serving.service.apidocs import describe_spec
    from serving.service.app import BindCNN

    # as served: BentoML's document with the service's summaries, tags and examples (serving.service.apidocs)
    model = {"name": "test", "version": "test", "sequence_length": 200, "alphabet": "ACGT"}
    return describe_spec(json.loads(json.dumps(BindCNN.openapi_spec.asdict())), "test", model)


SCHEMA = _own_schema()
schema = schemathesis.openapi.from_dict(SCHEMA)


def test_schema_is_the_one_served(http):
    served = http.get("/docs.json").json()
    assert served["paths"] == SCHEMA["paths"]
    assert served.get("components") == SCHEMA.get("components")


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_fuzz_no_5xx_and_responses_match_schema(case, server):
    """Generated requests (valid and invalid) for every operation: no 5xx, documented responses
    match their schema and content type."""
    case.call_and_validate(base_url=server.url, timeout=60,
                           checks=[not_a_server_error, response_schema_conformance, content_type_conformance])


# --------------------------------------------------------------------------------------- hostile corpus
def npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=True)
    return buf.getvalue()


def fasta(text: str | bytes) -> dict:
    return {"files": {"fasta": ("x.fa", text.encode() if isinstance(text, str) else text)}}


def array(content: bytes) -> dict:
    return {"files": {"array": ("x.npy", content)}}


A200 = "ACGT" * 50
_pickle_npy = npy(np.array([b"x", {"k": 1}], dtype=object))  # object dtype = a pickle inside the .npy
_bomb = gzip.compress(b">bomb\n" + b"A" * (MAX_UPLOAD * 4) + b"\n", 9)
_truncated = gzip.compress((">a\n" + A200 + "\n").encode() * 50)[:-40]
_deflate_only = zlib.compress(b">a\nACGT\n")  # zlib stream, not gzip: read as (non-UTF-8) text

CORPUS = {
    # name: (route, request kwargs, status, fragments that must be in the answer)
    "huge single sequence": ("/predict", {"json": {"sequences": ["A" * (MAX_UPLOAD - 100)]}}, 400,
                             ["sequence 0", "length", "expects 200"]),
    "huge sequence over the body cap": ("/predict", {"json": {"sequences": ["A" * (MAX_UPLOAD + 10)]}}, 413,
                                        ["BINDCNN_MAX_UPLOAD_BYTES"]),
    "a million tiny sequences": ("/predict", {"json": {"sequences": ["A"] * 1_000_000}}, 413,
                                 ["1000000 sequences", "BINDCNN_MAX_SEQUENCES"]),
    "tiny sequences under the count cap": ("/predict", {"json": {"sequences": ["A"] * MAX_SEQUENCES}}, 400,
                                           ["sequence 0", "length 1", "expects 200"]),
    "unicode letters": ("/predict", {"json": {"sequences": ["ÄCGT" + A200[4:]]}}, 400,
                        ["sequence 0", "position 1", "Ä"]),
    "emoji": ("/predict", {"json": {"sequences": [A200[:99] + "🧬" + A200[100:]]}}, 400,
              ["position 100"]),
    "NUL byte in a sequence": ("/predict", {"json": {"sequences": [A200[:10] + "\x00" + A200[11:]]}}, 400,
                               ["sequence 0", "position 11"]),
    "NUL bytes as JSON body": ("/predict", {"content": b"\x00" * 64, "headers": {"content-type": "application/json"}},
                               400, ["json"]),
    "sequences not a list": ("/predict", {"json": {"sequences": {"a": A200}}}, 400, ["sequences"]),
    "null sequence": ("/predict", {"json": {"sequences": [None]}}, 400, ["sequences"]),
    "deeply nested JSON": ("/predict", {"content": b"[" * 100_000 + b"]" * 100_000,
                                        "headers": {"content-type": "application/json"}}, 400, []),
    "saliency over its cap": ("/saliency", {"json": {"sequences": [A200] * (MAX_SALIENCY + 1)}}, 413,
                              ["BINDCNN_MAX_SALIENCY_SEQUENCES"]),
    "saliency unicode": ("/saliency", {"json": {"sequences": ["ü" * 200]}}, 400, ["position 1", "ü"]),
    "predict_one NUL": ("/predict_one", {"json": {"sequences": ["\x00" * 200]}}, 400, ["position 1"]),
    "FASTA gzip bomb": ("/predict_fasta", fasta(_bomb), 413, ["uncompressed", "BINDCNN_MAX_UPLOAD_BYTES"]),
    "FASTA truncated gzip": ("/predict_fasta", fasta(_truncated), 400, ["gzip", "truncated"]),
    "FASTA zlib not gzip": ("/predict_fasta", fasta(_deflate_only), 400, ["UTF-8"]),
    "FASTA no header": ("/predict_fasta", fasta(A200 + "\n"), 400, ["line 1", "before the first '>'"]),
    "FASTA empty record": ("/predict_fasta", fasta(f">a\n>b\n{A200}\n"), 400, ["'a'", "no sequence"]),
    "FASTA only headers": ("/predict_fasta", fasta(">a\n>b\n"), 400, ["no sequence"]),
    "FASTA NUL in sequence": ("/predict_fasta", fasta(f">a\n{A200[:5]}\x00{A200[6:]}\n"), 400,
                              ["record 1", "'a'", "position 6"]),  # its only record: none can be scored
    "FASTA unicode in sequence": ("/predict_fasta", fasta(f">a\n{A200[:5]}é{A200[6:]}\n"), 400,
                                  ["record 1", "position 6", "é"]),
    "FASTA binary": ("/predict_fasta", fasta(bytes(range(256)) * 10), 400, []),
    "npy object dtype (pickle inside)": ("/predict_onehot", array(_pickle_npy), 400, ["object", "refused"]),
    "npy scalar": ("/predict_onehot", array(npy(np.float32(1.0))), 400, ["shape"]),
    "npy rank 1": ("/predict_onehot", array(npy(np.zeros(800, np.float32))), 400, ["shape"]),
    "npy rank 4": ("/predict_onehot", array(npy(np.zeros((1, 2, 200, 4), np.float32))), 400, ["shape"]),
    "npy NaN": ("/predict_onehot", array(npy(np.full((1, 200, 4), np.nan, np.float32))), 400, ["NaN"]),
    "npy inf": ("/predict_onehot", array(npy(np.full((1, 200, 4), np.inf, np.float32))), 400, []),
    "npy -inf": ("/predict_onehot", array(npy(np.full((1, 200, 4), -np.inf, np.float64))), 400, []),
    "npy structured dtype": ("/predict_onehot", array(npy(np.zeros((1, 200), [("a", "f4"), ("b", "f4")]))), 400,
                             []),
    "npy string dtype": ("/predict_onehot", array(npy(np.array([A200]))), 400, []),
    "npy too many sequences": ("/predict_onehot", array(npy(np.zeros((MAX_SEQUENCES + 1, 200, 4), np.uint8))),
                               413, ["BINDCNN_MAX_SEQUENCES"]),
    "npy bad magic": ("/predict_onehot", array(b"\x93NUMPY\x09\x09" + b"\0" * 100), 400, ["not a readable .npy"]),
    "npy empty file": ("/predict_onehot", array(b""), 400, []),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_hostile_input_gets_a_precise_4xx(http, good, name):
    route, kwargs, status, fragments = CORPUS[name]
    r = http.post(route, **kwargs)
    assert r.status_code == status, f"{name}: {r.status_code} {r.text[:500]}"
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body  # as documented
    body = json.dumps(body, ensure_ascii=False)
    for fragment in fragments:
        assert fragment in body, f"{name}: {fragment!r} not in {body[:500]}"
    assert "An unexpected error" not in body
    still_serving(http, good)


def test_pickle_inside_npy_is_never_unpickled(http, good, tmp_path):
    """A .npy whose object array would run code when unpickled: refused, and the code never ran."""
    import os
    import pickle

    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    arr = np.empty(1, dtype=object)
    arr[0] = Boom()
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    pickle.dump(arr, buf, protocol=3)
    r = http.post("/predict_onehot", **array(buf.getvalue()))
    assert r.status_code == 400 and "refused" in r.text, r.text
    assert not marker.exists()
    still_serving(http, good)


def test_server_is_healthy_after_all_of_it(server, http, good):
    """After the whole corpus and the fuzzing: liveness, readiness and a correct answer."""
    assert http.get("/livez").status_code == 200
    assert http.get("/readyz").status_code == 200
    still_serving(http, good)
