"""serving.service.metrics through a real `bentoml serve` with two predictor workers: after known requests,
/metrics holds the model's own counters (sequences scored, rejects by reason, windows, batch sizes, model info)
summed over the workers."""
from __future__ import annotations

import httpx
import psutil
import pytest

from serving.dna import random_dna
from serving.service.launch import Server

MAX_SEQUENCES = 40


def families(url: str) -> dict[str, dict[tuple, float]]:
    """Prometheus text of /metrics -> {sample name: {sorted label items: value}}."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


@pytest.fixture(scope="module")
def server(trained):
    env = {"BINDCNN_MODEL": trained["tag"], "BINDCNN_WORKERS": "2", "BINDCNN_MAX_SEQUENCES": str(MAX_SEQUENCES)}
    with Server(env=env) as srv:
        yield srv


def test_bindcnn_workers_sets_the_predictor_worker_count(server):
    workers = [p for p in server.workers() if "--service-name bindcnn " in " ".join(psutil.Process(p).cmdline()) + " "]
    assert len(workers) == 2


def test_model_metrics_count_what_was_done(server, trained):
    length = trained["meta"]["sequence_length"]
    before = families(server.url)
    sizes = [1, 5, 17, 3, 9, 2]
    for i, n in enumerate(sizes):  # a new connection each: the requests spread over both workers
        r = httpx.post(f"{server.url}/predict", json={"sequences": random_dna(n, length, seed=i)}, timeout=30)
        assert r.status_code == 200
    assert httpx.post(f"{server.url}/predict_one", json={"sequences": random_dna(1, length, 9)}).status_code == 200
    bad = [("X" * length, 400), ("ACGT", 400), ("", 400)]
    for seq, status in bad:
        assert httpx.post(f"{server.url}/predict", json={"sequences": [seq]}, timeout=30).status_code == status
    too_many = httpx.post(f"{server.url}/predict", json={"sequences": random_dna(MAX_SEQUENCES + 1, length, 1)})
    assert too_many.status_code == 413
    long = random_dna(1, length + 99, seed=5)[0]
    assert httpx.post(f"{server.url}/scan", json={"sequence": long, "stride": 2}, timeout=30).status_code == 200
    after = families(server.url)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    model = trained["meta"]["name"]  # several models can be served: each count names its model
    assert delta("bindcnn_sequences_scored_total", endpoint="predict", model=model) == sum(sizes)
    assert delta("bindcnn_sequences_scored_total", endpoint="predict_one", model=model) == 1
    assert delta("bindcnn_batch_size_count", endpoint="predict") == len(sizes)
    assert delta("bindcnn_batch_size_sum", endpoint="predict") == sum(sizes)
    assert delta("bindcnn_batch_size_bucket", endpoint="predict", le="4.0") == 3  # 1, 3 and 2
    assert delta("bindcnn_rejected_inputs_total", reason="bad_character") == 1
    assert delta("bindcnn_rejected_inputs_total", reason="wrong_length") == 1
    assert delta("bindcnn_rejected_inputs_total", reason="empty_sequence") == 1
    assert delta("bindcnn_rejected_inputs_total", reason="too_large") == 1
    assert delta("bindcnn_windows_scanned_total") == 50  # (299 - 200) // 2 + 1
    info = after["bindcnn_model_info"]
    assert info == {tuple(sorted({"model": trained["meta"]["name"], "version": trained["meta"]["version"],
                                  "provider": "CPUExecutionProvider", "service": "predictor"}.items())): 1.0}
    # BentoML's own request metrics are still there
    assert any(name.startswith("bentoml_service_request") for name in after)


def test_upload_rejects_are_counted_by_status(server):
    before = families(server.url)
    r = httpx.post(f"{server.url}/predict_fasta", files={"fasta": ("x.fa", b"not a fasta")}, timeout=30)
    assert r.status_code == 400
    after = families(server.url)
    assert (value(after, "bindcnn_rejected_inputs_total", reason="invalid_input")
            - value(before, "bindcnn_rejected_inputs_total", reason="invalid_input")) == 1
