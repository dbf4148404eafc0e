"""serving.service through a real `bentoml serve` (one per session, on a free loopback port): every
endpoint against in-process ONNX Runtime / TensorFlow, every input rule's status and message, batching."""
from __future__ import annotations

import gzip
import io
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from serving.dna import decode, encode
from serving.service.launch import Server

TOL = 1e-6
MAX_SEQUENCES = 300
MAX_UPLOAD = 2 * 1024 * 1024 + 512 * 1024  # above Starlette's 1 MiB part limit, so that one is reachable
MAX_SALIENCY = 6
MAX_SCAN_WINDOWS = 5000


@pytest.fixture(scope="module")
def server(trained):
    with Server.for_model(trained["tag"], max_sequences=MAX_SEQUENCES, max_upload_bytes=MAX_UPLOAD,
                          max_saliency_sequences=MAX_SALIENCY, max_scan_windows=MAX_SCAN_WINDOWS) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    import bentoml

    with bentoml.SyncHTTPClient(server.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def seqs(trained) -> list[str]:
    """40 test-set sequences (positives and negatives, so logits vary) plus 4 random ones with N/lowercase."""
    from training.datasets import load_h5

    x = load_h5(trained["data"]).x["test"][:40]
    rng = np.random.default_rng(3)
    extra = ["".join(rng.choice(list("ACGTNacgtn"), size=trained["meta"]["sequence_length"])) for _ in range(4)]
    return decode(x) + extra


def close(got, want, tol=TOL):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=0, atol=tol)


def expect(resp: httpx.Response, status: int, *fragments: str) -> str:
    """Assert the status code and that the body's message holds every fragment; return the body."""
    body = resp.text
    assert resp.status_code == status, f"{resp.status_code} != {status}: {body}"
    for fragment in fragments:
        assert fragment in body, f"{fragment!r} not in {body}"
    return body


def fasta_bytes(ids, sequences, gz=False) -> bytes:
    text = "".join(f">{i} some description\n{s[:70]}\n{s[70:]}\n" for i, s in zip(ids, sequences)).encode()
    return gzip.compress(text) if gz else text


def npy_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=True)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------- /model
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_model_reports_metadata_providers_and_no_tensorflow(http, trained, method):
    info = expect(http.request(method, "/model"), 200)
    info = json.loads(info)
    assert info["model"]["version"] == trained["meta"]["version"]
    assert info["model"]["files"] == trained["meta"]["files"]
    assert info["tag"].split(":")[0] == trained["meta"]["name"]
    assert info["predictor"]["providers"][-1] == "CPUExecutionProvider"
    assert info["tensorflow_loaded"] is False  # the predictor worker never imported TensorFlow
    assert info["explainer"]["tensorflow_loaded"] is True  # ...the explainer's worker did
    assert info["versions"]["bentoml"] and info["versions"]["onnxruntime-gpu"]
    assert info["limits"]["max_sequences"] == MAX_SEQUENCES


def test_builtin_endpoints_stay(http):
    assert http.get("/livez").status_code == 200
    assert http.get("/readyz").status_code == 200
    paths = http.get("/docs.json").json()["paths"]
    for route in ("/predict", "/predict_fasta", "/predict_onehot", "/predict_one", "/saliency", "/model"):
        assert route in paths


# ------------------------------------------------------------------------------------- predictions
@pytest.mark.parametrize("rc", [False, True])
def test_predict_matches_in_process(http, client, predictor, seqs, rc):
    want = predictor.predict_sequences(seqs, reverse_complement_average=rc)
    for got in (http.post("/predict", json={"sequences": seqs, "reverse_complement_average": rc}).json(),
                client.predict(sequences=seqs, reverse_complement_average=rc)):
        close(got["probability"], want["probability"])
        close(got["logit"], want["logit"])
    assert not np.allclose(want["logit"], want["logit"][0])  # a real spread of answers, not a constant


@pytest.mark.parametrize("gz", [False, True])
def test_predict_fasta_curl_style_and_client(http, client, predictor, seqs, tmp_path, gz):
    ids = [f"seq{i}" for i in range(len(seqs))]
    data = fasta_bytes(ids, seqs, gz)
    path = tmp_path / ("in.fa.gz" if gz else "in.fa")
    path.write_bytes(data)
    want = predictor.predict_sequences(seqs)
    # what `curl -F fasta=@in.fa` sends, and the same with an explicit text type
    for ctype in ("application/octet-stream", "text/plain"):
        got = http.post("/predict_fasta", files={"fasta": (path.name, data, ctype)}).json()
        assert [r["id"] for r in got] == ids
        close([r["probability"] for r in got], want["probability"])
        close([r["logit"] for r in got], want["logit"])
    got = client.predict_fasta(fasta=path)
    assert [r["id"] for r in got] == ids
    close([r["logit"] for r in got], want["logit"])
    rc = client.predict_fasta(fasta=path, reverse_complement_average=True)
    close([r["logit"] for r in rc], predictor.predict_sequences(seqs, reverse_complement_average=True)["logit"])


@pytest.mark.parametrize("layout,dtype", [("NL4", np.uint8), ("NL4", bool), ("NL4", np.float32),
                                          ("N4L", np.float64)])
def test_predict_onehot_matches_in_process(http, client, predictor, seqs, tmp_path, layout, dtype):
    x = encode(seqs)
    want = predictor.predict_onehot(x)
    arr = (x if layout == "NL4" else x.transpose(0, 2, 1)).astype(dtype)
    path = tmp_path / "x.npy"
    np.save(path, arr)
    got = http.post("/predict_onehot", files={"array": ("x.npy", path.read_bytes())}).json()
    close(got["probability"], want["probability"])
    close(got["logit"], want["logit"])
    got = client.predict_onehot(array=path, reverse_complement_average=True)
    close(got["logit"], predictor.predict_onehot(x, reverse_complement_average=True)["logit"])


def test_predict_one_strings_and_options(http, client, predictor, seqs):
    plain = predictor.predict_sequences(seqs[:3])
    rc = predictor.predict_sequences(seqs[:3], reverse_complement_average=True)
    got = http.post("/predict_one", json={"sequences": [seqs[0]]}).json()
    assert len(got) == 1
    close(got[0]["logit"], plain["logit"][0])
    items = [seqs[0], {"sequence": seqs[1], "reverse_complement_average": True},
             {"sequence": seqs[2], "reverse_complement_average": False}]
    for got in (http.post("/predict_one", json={"sequences": items}).json(), client.predict_one(sequences=items)):
        close([r["logit"] for r in got], [plain["logit"][0], rc["logit"][1], plain["logit"][2]])
        close([r["probability"] for r in got], [plain["probability"][0], rc["probability"][1],
                                                plain["probability"][2]])


def _batch_histogram(http) -> tuple[float, float]:
    """(sum, count) of the bindcnn_batch_size histogram for predict_one (sequences per model call)."""
    text = http.get("/metrics").text
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith("bindcnn_batch_size") and 'endpoint="predict_one"' in line:
            name, value = line.rsplit(" ", 1)
            if name.split("{")[0].endswith("_sum"):
                total += float(value)
            elif name.split("{")[0].endswith("_count"):
                count += float(value)
    return total, count


def test_concurrent_single_sequences_are_answered_and_counted(server, predictor, seqs):
    """64 clients connected first, then all sending at once: each gets its own sequence's score, and the batch
    histogram counts every sequence once. (How many share a call depends on timing and on BentoML's adaptive batching; benchmarks section 4 reports
    the batch sizes under load.)"""
    import http.client
    import json
    import socket

    n = 64
    want = predictor.predict_sequences(seqs)["logit"]
    before_sum, before_count = _batch_histogram(httpx.Client(base_url=server.url))
    host, port = server.url.split("//")[1].split(":")
    socks = [socket.create_connection((host, int(port)), timeout=120) for _ in range(n)]
    for i, sock in enumerate(socks):
        body = json.dumps({"sequences": [seqs[i % len(seqs)]]}).encode()
        sock.sendall(f"POST /predict_one HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    got = []
    for sock in socks:
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        assert answer.status == 200, answer.read()
        got.append(json.loads(answer.read())[0]["logit"])
        sock.close()
    close(got, [want[i % len(seqs)] for i in range(n)])
    total, count = _batch_histogram(httpx.Client(base_url=server.url))
    batches, sequences = count - before_count, total - before_sum
    assert sequences == n
    assert 1 <= batches <= n


# ----------------------------------------------------------------------------------------- saliency
@pytest.fixture(scope="session")
def logits_fn(trained):
    from serving.attribution import load_logits_fn

    return load_logits_fn(trained["dir"])


@pytest.mark.parametrize("corrected", [False, True])
def test_saliency_equals_tensorflow_gradient(http, client, logits_fn, seqs, corrected):
    from serving.attribution import gradients

    x = encode(seqs[:MAX_SALIENCY])
    want = gradients(logits_fn, x, corrected=corrected) * x  # grad x input, computed here with TensorFlow
    got = http.post("/saliency", json={"sequences": seqs[:MAX_SALIENCY], "corrected": corrected}).json()
    scores = np.asarray(got["scores"])
    assert scores.shape == x.shape
    close(scores, want)
    assert np.abs(scores).max() > 0
    close(client.saliency(sequences=seqs[:2], corrected=corrected)["scores"], want[:2])


def test_saliency_methods_match_in_process_attributions(http, logits_fn, seqs):
    from serving.attribution import DEFAULT_METHOD, attribute

    x = encode(seqs[:3])
    for method in ("gradient", "corrected", "expected_gradients"):
        got = http.post("/saliency", json={"sequences": seqs[:3], "method": method})
        assert got.status_code == 200, got.text
        close(got.json()["scores"], attribute(logits_fn, x, method), tol=1e-5)
    default = http.post("/saliency", json={"sequences": seqs[:3]}).json()["scores"]
    close(default, attribute(logits_fn, x, DEFAULT_METHOD), tol=1e-5)
    expect(http.post("/saliency", json={"sequences": seqs[:1], "method": "ism"}), 400, "expected_gradients")
    expect(http.post("/saliency", json={"sequences": seqs[:1], "method": "gradient", "corrected": True}), 400,
           "contradicts")
    logo = http.post("/saliency_logo", json={"sequence": seqs[0], "method": "expected_gradients"})
    assert logo.status_code == 200 and logo.content[:4] == b"\x89PNG"


def test_saliency_logo_is_a_png(http, seqs):
    r = http.post("/saliency_logo", json={"sequence": seqs[0], "corrected": True})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n" and len(r.content) > 1000


# -------------------------------------------------------------------------------------- input rules
def test_invalid_character_names_index_position_character(http, client, seqs):
    bad = seqs[1][:9] + "X" + seqs[1][10:]
    for route in ("/predict", "/saliency"):
        expect(http.post(route, json={"sequences": [seqs[0], bad]}), 400,
               "sequence 1", "invalid character 'X' at position 10")
    expect(http.post("/predict_one", json={"sequences": [bad]}), 400, "sequence 0", "'X' at position 10")
    expect(http.post("/saliency_logo", json={"sequence": bad}), 400, "'X' at position 10")
    from bentoml.exceptions import BentoMLException

    with pytest.raises(BentoMLException, match="position 10") as info:
        client.predict(sequences=[bad])
    assert info.value.error_code == 400


def test_wrong_length_names_index_and_length(http, seqs):
    expect(http.post("/predict", json={"sequences": [seqs[0], seqs[1][:150]]}), 400,
           "sequence 1", "length 150", "expects 200")
    expect(http.post("/predict_one", json={"sequences": [seqs[0] + "A"]}), 400, "length 201", "expects 200")


@pytest.mark.parametrize("body,fragments", [
    ({"sequences": []}, ("no sequences given",)),
    ({"sequences": ["ACGT", 5]}, ("sequences", "string")),
    ({"sequences": "ACGT"}, ("sequences", "list")),
    ({}, ("sequences", "required")),
])
def test_bad_json_shapes(http, body, fragments):
    expect(http.post("/predict", json=body), 400, *fragments)


def test_malformed_json(http):
    expect(http.post("/predict", content=b'{"sequences": ["ACG', headers={"content-type": "application/json"}),
           400, "json")


def test_too_many_sequences(http, client, seqs, tmp_path):
    many = (seqs * 10)[: MAX_SEQUENCES + 1]
    expect(http.post("/predict", json={"sequences": many}), 413, str(MAX_SEQUENCES + 1), "BINDCNN_MAX_SEQUENCES")
    expect(http.post("/predict_fasta", files={"fasta": ("m.fa", fasta_bytes(range(len(many)), many))}), 413,
           "BINDCNN_MAX_SEQUENCES")
    expect(http.post("/predict_onehot", files={"array": ("m.npy", npy_bytes(encode(many).astype(np.uint8)))}),
           413, "BINDCNN_MAX_SEQUENCES")
    expect(http.post("/saliency", json={"sequences": seqs[: MAX_SALIENCY + 1]}), 413,
           "BINDCNN_MAX_SALIENCY_SEQUENCES")


def test_body_too_large(http, seqs):
    huge = {"sequences": seqs * (MAX_UPLOAD // (200 * len(seqs)) + 1)}
    expect(http.post("/predict", json=huge), 413, "BINDCNN_MAX_UPLOAD_BYTES")

    def chunks():  # no Content-Length: the cap must hold while streaming
        yield b'{"sequences": ['
        for _ in range(MAX_UPLOAD // 100_000 + 1):
            yield b'"' + b"A" * 100_000 + b'",'
        yield b'"A"]}'

    expect(http.post("/predict", content=chunks(), headers={"content-type": "application/json"}), 413,
           "BINDCNN_MAX_UPLOAD_BYTES")


@pytest.mark.parametrize("content,fragments", [
    (b"", ("no records",)),
    (b"ACGTACGT\n", ("line 1", "before the first '>'")),
    (b">\nACGT\n", ("line 1", "empty header")),
    (b">a\n>b\nACGT\n", ("'a'", "no sequence")),
    (b"\xff\xfe>x\n", ("not UTF-8",)),
    (gzip.compress(b">x\n" + b"A" * 200 + b"\n")[:-12], ("gzip",)),
])
def test_bad_fasta(http, content, fragments):
    expect(http.post("/predict_fasta", files={"fasta": ("x.fa", content)}), 400, *fragments)


def test_fasta_record_errors_name_the_record(http, seqs, predictor):
    """A partly bad upload: a row per record, the bad ones with null scores and their reason; all bad: 400 naming
    each record."""
    bad = seqs[2][:19] + "?" + seqs[2][20:]
    content = fasta_bytes(["r1", "r2", "r3"], [seqs[0], seqs[1], bad])
    rows = json.loads(expect(http.post("/predict_fasta", files={"fasta": ("x.fa", content)}), 200))
    assert [r["id"] for r in rows] == ["r1", "r2", "r3"]
    want = predictor.predict_sequences(seqs[:2])["logit"]
    np.testing.assert_allclose([r["logit"] for r in rows[:2]], want, atol=1e-5)
    assert rows[2]["probability"] is None and rows[2]["logit"] is None and "'?' at position 20" in rows[2]["reason"]
    content = fasta_bytes(["short", "bad"], [seqs[1][:120], bad])
    expect(http.post("/predict_fasta", files={"fasta": ("x.fa", content)}), 400, "no record can be scored",
           "record 1", "'short'", "length 120", "record 2", "'bad'", "'?' at position 20")


def test_gzip_bomb_is_capped(http):
    bomb = gzip.compress(b">x\n" + b"A" * (MAX_UPLOAD + 1000) + b"\n")
    assert len(bomb) < MAX_UPLOAD
    expect(http.post("/predict_fasta", files={"fasta": ("bomb.fa.gz", bomb)}), 413, "uncompressed",
           "BINDCNN_MAX_UPLOAD_BYTES")


def test_file_fields_must_be_multipart_uploads(http):
    expect(http.post("/predict_fasta", json={"fasta": "/etc/passwd"}), 415, "multipart/form-data", "fasta=@")
    expect(http.post("/predict_fasta", data={"fasta": "http://127.0.0.1:1/x.fa"},
                     files={"other": ("o", b"x")}), 400, "'fasta' must be a file upload")
    expect(http.post("/predict_onehot", files={"wrong": ("x.npy", b"x")}), 400, "array")


@pytest.mark.parametrize("filename", ["a" * 300 + ".fa", "é" * 150 + ".fa"])
def test_hostile_upload_file_names(http, seqs, filename):
    expect(http.post("/predict_fasta", files={"fasta": (filename, fasta_bytes(["x"], seqs[:1]))}), 400,
           "file name too long")


def test_broken_multipart_is_400(http):
    expect(http.post("/predict_fasta", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}), 400,
           "multipart")
    body = b'--bnd\r\nContent-Disposition: form-data; name="fasta"; filename="a.fa"\r\n\r\n>a\nACGT'  # no end
    # Starlette drops the unterminated part, so the file is missing
    expect(http.post("/predict_fasta", content=body, headers={"content-type": "multipart/form-data; boundary=bnd"}),
           400, "fasta", "Field required")
    expect(http.post("/predict", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=q"}),
           400, "multipart")


def test_oversized_form_field_is_400(http):
    big = json.dumps(["A" * 200] * 6000)  # ~1.2 MB as a non-file form field: Starlette's part limit
    expect(http.post("/predict", data={"sequences": big}, files={"unused": ("u", b"")}), 400,
           "multipart/form-data", "maximum size")
    expect(http.post("/predict", data={"sequences": big}), 400, "x-www-form-urlencoded", "maximum size")


@pytest.mark.parametrize("array,fragments", [
    (np.zeros((3, 200, 5), np.float32), ("shape", "(3, 200, 5)")),
    (np.zeros((3, 200), np.float32), ("shape",)),
    (np.full((2, 200, 4), np.nan, np.float32), ("NaN",)),
    (np.full((2, 200, 4), 2, np.uint8), ("0 or 1",)),
    (np.ones((2, 200, 4), np.uint8), ("sequence 0", "position 1", "more than one base")),
    (np.array([{"a": 1}], dtype=object), ("object arrays", "refused")),
    (np.zeros((2, 200, 4), np.complex64), ("dtype",)),
    (np.zeros((0, 200, 4), np.float32), ("no sequences",)),
])
def test_bad_onehot(http, array, fragments):
    expect(http.post("/predict_onehot", files={"array": ("x.npy", npy_bytes(array))}), 400, *fragments)


@pytest.mark.parametrize("content,fragments", [
    (b"not an array", ("not a readable .npy",)),
    (npy_bytes(np.zeros((2, 200, 4), np.uint8))[:-100], ("not a readable .npy",)),
])
def test_unreadable_npy(http, content, fragments):
    expect(http.post("/predict_onehot", files={"array": ("x.npy", content)}), 400, *fragments)


def test_npz_is_refused(http):
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((2, 200, 4), np.uint8))
    expect(http.post("/predict_onehot", files={"array": ("x.npz", buf.getvalue())}), 400, ".npz")


def test_npy_header_lying_about_its_size(http):
    """A header that claims more data than the file holds is refused before anything is allocated."""
    real = npy_bytes(np.zeros((2, 200, 4), np.uint8))
    lie = real.replace(b"(2, 200, 4)", b"(9, 200, 4)")
    expect(http.post("/predict_onehot", files={"array": ("x.npy", lie)}), 400, "not a readable .npy")


# ------------------------------------------------------------------------------------- start-up
def test_missing_model_stops_startup_with_what_to_run(trained):
    srv = Server(env={"BINDCNN_MODEL": "nosuchmodel:latest"})
    with pytest.raises(RuntimeError) as info:
        srv.start(timeout=90)
    srv.stop()
    assert "bindcnn train --name nosuchmodel" in str(info.value)


def test_tampered_model_stops_startup(trained, bentoml_home, tmp_path):
    home = tmp_path / "bentoml"
    shutil.copytree(bentoml_home / "models", home / "models", symlinks=True)
    name, version = trained["tag"].split(":")
    onnx = home / "models" / name / version / "model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    srv = Server(env={"BINDCNN_MODEL": trained["tag"], "BENTOML_HOME": str(home)})
    with pytest.raises(RuntimeError) as info:
        srv.start(timeout=90)
    srv.stop()
    message = str(info.value)
    assert "model.onnx does not match its sha256" in message and re.search(r"bindcnn train", message)


# ------------------------------------------------------------ scanning, variants, mutagenesis endpoints
def test_scan_scores_every_window_in_genome_coordinates(http, predictor, seqs):
    long_seq = seqs[0] + seqs[1][:60]  # 260 bp
    r = http.post("/scan", json={"sequence": long_seq, "id": "chr2:1000-1260", "stride": 7, "threshold": 0.0})
    body = r.json()
    assert r.status_code == 200, r.text
    n = (260 - 200) // 7 + 1
    assert body["chrom"] == "chr2" and body["offset"] == 1000 and len(body["probability"]) == n
    assert body["start"] == [1000 + 7 * i for i in range(n)] and body["end"] == [1200 + 7 * i for i in range(n)]
    want = predictor.predict_sequences([long_seq[7 * i: 7 * i + 200] for i in range(n)])
    close(body["probability"], want["probability"])
    close(body["logit"], want["logit"])
    # threshold 0: every window is a hit, and overlapping windows merge into one site spanning them all
    assert [(s["chrom"], s["start"], s["end"]) for s in body["sites"]] == [("chr2", 1000, 1256)]
    assert body["sites"][0]["probability"] == pytest.approx(max(body["probability"]))


def test_scan_short_bad_and_too_long(http, predictor, seqs):
    expect(http.post("/scan", json={"sequence": "ACGT" * 10, "id": "tiny"}), 400, "shorter than the model's window")
    padded = http.post("/scan", json={"sequence": "ACGT" * 10, "short": "pad"}).json()
    assert padded["padded"] and len(padded["probability"]) == 1
    left = (200 - 40) // 2
    close(padded["probability"], predictor.predict_sequences(["N" * left + "ACGT" * 10 + "N" * (160 - left)])["probability"])
    expect(http.post("/scan", json={"sequence": seqs[0][:150] + "X" + seqs[0][151:] + "ACGT"}), 400,
           "invalid character 'X' at position 151")
    expect(http.post("/scan", json={"sequence": "A" * (MAX_SCAN_WINDOWS + 250)}), 413, "BINDCNN_MAX_SCAN_WINDOWS")
    expect(http.post("/scan", json={"sequence": seqs[0], "stride": 0}), 400, "stride")


def test_scan_fasta_upload(http, seqs):
    fasta = f">a\n{seqs[0]}{seqs[1][:20]}\n>b\n{seqs[2]}\n".encode()
    r = http.post("/scan_fasta", files={"fasta": ("x.fa", fasta)}, data={"stride": "10"})
    assert r.status_code == 200, r.text
    assert [(x["id"], len(x["probability"])) for x in r.json()] == [("a", 3), ("b", 1)]


def test_variants_effect_is_alt_minus_ref(http, predictor, seqs):
    ref_seq = seqs[0] + seqs[1]  # 400 bp
    p0 = 250
    alt_base = "A" if ref_seq[p0].upper() != "A" else "C"
    r = http.post("/variants", json={"sequence": ref_seq, "variants": [
        {"pos": p0 + 1, "ref": ref_seq[p0], "alt": alt_base, "id": "snv"},
        {"pos": p0 + 1, "ref": "T" if ref_seq[p0].upper() != "T" else "G", "alt": "A"},
        {"pos": 9999, "ref": "A", "alt": "C"},
    ]})
    assert r.status_code == 200, r.text
    snv, wrong, outside = r.json()
    window_ref = ref_seq[p0 - 100: p0 + 100]
    window_alt = window_ref[:100] + alt_base + window_ref[101:]
    want = predictor.predict_sequences([window_ref, window_alt])
    assert snv["status"] == "ok" and snv["id"] == "snv"
    assert snv["delta_logit"] == pytest.approx(float(want["logit"][1] - want["logit"][0]), abs=1e-5)
    assert snv["delta_probability"] == pytest.approx(float(want["probability"][1] - want["probability"][0]), abs=1e-6)
    assert wrong["status"].startswith("ref mismatch") and "delta_logit" not in wrong
    assert "past the end" in outside["status"]
    expect(http.post("/variants", json={"sequence": ref_seq, "variants": []}), 400, "no variants")
    expect(http.post("/variants", json={"sequence": ref_seq, "variants": [{"pos": 0, "ref": "A", "alt": "C"}]}),
           400, "pos")


def test_mutagenesis_matches_single_mutants(http, predictor, seqs):
    seq = seqs[0]
    body = http.post("/mutagenesis", json={"sequence": seq}).json()
    delta = np.asarray(body["delta_logit"])
    assert delta.shape == (200, 4) and body["alphabet"] == "ACGT"
    codes = ["ACGT".index(c) if c in "ACGT" else -1 for c in seq.upper()]
    assert all(delta[i, c] == 0 for i, c in enumerate(codes) if c >= 0)
    base = predictor.predict_sequences([seq])["logit"][0]
    for i in (0, 97, 199):
        for b, letter in enumerate("ACGT"):
            mutant = seq[:i] + letter + seq[i + 1:]
            assert delta[i, b] == pytest.approx(predictor.predict_sequences([mutant])["logit"][0] - base, abs=1e-5)
    png = http.post("/mutagenesis_logo", json={"sequence": seq})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    expect(http.post("/mutagenesis", json={"sequence": seq[:-1]}), 400, "length 199")
