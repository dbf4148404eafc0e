"""The served API documentation and the first-hour HTTP behaviour: a real title, version and description, a
summary per endpoint, examples that work as they are; JSON without a content type; 4xx logged in one line."""
from __future__ import annotations

import json

import pytest

from serving.service.apidocs import CTCF_CORE, example_fasta, example_sequence, request_example


@pytest.fixture(scope="module")
def docs(http):
    response = http.get("/docs.json")
    assert response.status_code == 200
    return response.json()


def _operations(docs):
    for route, item in docs["paths"].items():
        for method, op in item.items():
            yield route, method, op


def test_info_names_the_service_the_package_and_the_model(docs, trained):
    from importlib.metadata import version

    info = docs["info"]
    assert "bindcnn" in info["title"] and "CTCF" in info["title"]
    assert version("bindcnn") in info["version"]
    assert trained["tag"].split(":")[1] in info["version"]  # the model's version
    assert "BentoML" not in info["description"] and "badge" not in info["description"]
    assert "200-nt" in info["description"] and ">ctcf_site" in info["description"]
    assert "contact" not in info


def test_every_operation_has_a_summary_and_a_tag_of_ours(docs):
    ours = {t["name"] for t in docs["tags"]}
    for route, method, op in _operations(docs):
        assert op.get("summary"), f"{method} {route} has no summary"
        assert "<code>" not in op["summary"]
        assert set(op["tags"]) <= ours, (route, op["tags"])


def test_every_json_example_works_as_it_is(http, docs):
    tried = 0
    for route, method, op in _operations(docs):
        media = ((op.get("requestBody") or {}).get("content") or {}).get("application/json")
        if method != "post" or media is None or route in ("/model", "/models"):
            continue
        assert "example" in media, f"{route} has no example body"
        response = http.post(route, json=media["example"])
        assert response.status_code == 200, (route, response.text[:300])
        tried += 1
    assert tried >= 8  # predict, predict_one, scan, variants, mutagenesis(+logo), saliency(+logo)


def test_the_example_sequence_is_called_bound_and_its_control_not(http, trained):
    bound = example_sequence(trained["meta"]["sequence_length"])
    unbound = bound.replace(CTCF_CORE, "A" * len(CTCF_CORE))
    out = http.post("/predict", json={"sequences": [bound, unbound]}).json()
    assert out["probability"][0] > 0.5 > out["probability"][1]


def test_the_documented_fasta_uploads_as_it_is(http):
    files = {"fasta": ("example.fa", example_fasta(200).encode(), "text/plain")}
    rows = http.post("/predict_fasta", files=files).json()
    assert [r["id"] for r in rows] == ["ctcf_site", "no_site"]


def test_index_page_is_swagger_without_remote_trackers(http):
    page = http.get("/")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "googletagmanager" not in page.text and "<title>bindcnn API</title>" in page.text


def test_request_example_follows_the_schema():
    assert request_example("/predict", {"sequences": {}}, 50) == {"sequences": [example_sequence(50)]}
    scan = request_example("/scan", {"sequence": {}, "stride": {}}, 50)
    assert len(scan["sequence"]) == 100 and scan["stride"] >= 1
    variant = request_example("/variants", {"sequence": {}, "variants": {}}, 50)["variants"][0]
    assert variant["ref"] == example_sequence(50)[variant["pos"] - 1] != variant["alt"]
    assert request_example("/other", {"x": {}}, 50) is None


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_json_without_its_content_type_is_taken_as_json(http, content_type):
    body = json.dumps({"sequences": [example_sequence(200)]}).encode()
    headers = {"content-type": content_type} if content_type else {}
    request = http.build_request("POST", "/predict", content=body, headers=headers)
    request.headers.pop("content-type", None) if content_type is None else None
    assert request.headers.get("content-type") == content_type
    response = http.send(request)
    assert response.status_code == 200, response.text
    assert response.json()["probability"][0] > 0.5


def test_broken_json_without_content_type_says_what_to_send(http):
    request = http.build_request("POST", "/predict", content=b'{"sequences": [')
    request.headers.pop("content-type", None)
    response = http.send(request)
    assert response.status_code == 400
    assert "Content-Type: application/json" in response.json()["error"]


def test_http_errors_name_no_command_line_flags(http):
    short = http.post("/scan", json={"sequence": "ACGT"})
    assert short.status_code == 400 and "--" not in short.json()["error"]
    assert "short" in short.json()["error"]


def test_client_errors_are_one_warning_line_without_traceback(http, server):
    marker = "ACGTQ" + "A" * 195
    before = server.output()
    assert http.post("/predict", json={"sequences": [marker]}).status_code == 400
    assert http.post("/predict", json={"sequences": "not a list"}).status_code == 400
    import time

    for _ in range(50):  # the log is written by the worker; give it a moment
        new = server.output()[len(before):]
        if new.count("client error 400") >= 2:
            break
        time.sleep(0.1)
    lines = [line for line in new.splitlines() if "/predict" in line and "status=" not in line]
    assert len(lines) == 2, new[-3000:]
    assert all("[WARNING]" in line and "client error 400 on /predict [POST]" in line for line in lines)
    assert "position 5" in lines[0] and "'Q'" in lines[0]  # 1-based, as the response says
    assert "sequences: Input should be a valid array" in lines[1]
    assert "Traceback" not in new and "[ERROR]" not in new
