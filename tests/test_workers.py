"""serving.service.workers: one predictor worker per core with one ONNX Runtime thread each on CPU, one per GPU
on GPU, BINDCNN_WORKERS / BINDCNN_THREADS overriding, and one GPU per worker where several are visible."""
from __future__ import annotations

import os

import pytest

from serving.service import workers


@pytest.fixture
def cpus(monkeypatch):
    """Pretend this process may use `n` cores and sees no GPU."""
    def set_cpus(n: int) -> None:
        monkeypatch.setattr(workers, "available_cpus", lambda: n)
        monkeypatch.setattr(workers, "gpu_count", lambda: 0)

    monkeypatch.delenv(workers.WORKERS_ENV, raising=False)
    monkeypatch.delenv(workers.THREADS_ENV, raising=False)
    return set_cpus


def test_cpu_default_is_one_single_threaded_worker_per_core(cpus):
    cpus(6)
    assert workers.worker_count() == 6
    assert workers.threads_per_worker() == 1
    assert workers.predictor_config()["workers"] == 6


def test_fewer_workers_share_the_cores_out(cpus, monkeypatch):
    cpus(8)
    monkeypatch.setenv(workers.WORKERS_ENV, "2")
    assert workers.worker_count() == 2
    assert workers.threads_per_worker() == 4
    monkeypatch.setenv(workers.THREADS_ENV, "3")
    assert workers.threads_per_worker() == 3


def test_gpu_default_is_one_worker_per_gpu(monkeypatch):
    monkeypatch.delenv(workers.WORKERS_ENV, raising=False)
    monkeypatch.setattr(workers, "available_cpus", lambda: 16)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert workers.gpu_count() == 2
    assert workers.worker_count() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert workers.gpu_count() == 0 and workers.worker_count() == 16


@pytest.mark.parametrize("bad", ["0", "-2", "many"])
def test_a_bad_setting_names_the_variable(cpus, monkeypatch, bad):
    cpus(2)
    monkeypatch.setenv(workers.WORKERS_ENV, bad)
    with pytest.raises(ValueError, match=workers.WORKERS_ENV):
        workers.worker_count()


def test_each_worker_gets_its_own_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert workers.pin_gpu(1) == "2"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert workers.pin_gpu(2) == "5"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert workers.pin_gpu(3) == "2" and os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")  # one GPU: nothing to do
    assert workers.pin_gpu(1) is None and os.environ["CUDA_VISIBLE_DEVICES"] == "7"


def test_available_cpus_is_at_least_one_and_at_most_the_affinity():
    assert 1 <= workers.available_cpus() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value, traced", [(None, False), ("0", False), ("1", True)])
def test_no_opentelemetry_span_per_request_unless_asked(monkeypatch, value, traced):
    if value is None:
        monkeypatch.delenv(workers.TRACING_ENV, raising=False)
    else:
        monkeypatch.setenv(workers.TRACING_ENV, value)
    config = workers.predictor_config()
    assert ("tracing" not in config) is traced
    if not traced:
        from opentelemetry.util.http import ExcludeList

        excluded = ExcludeList(config["tracing"]["excluded_urls"])  # as BentoML builds it for the middleware
        assert excluded.url_disabled("http://127.0.0.1:3000/predict_one")
        assert excluded.url_disabled("http://[::1]:8080/model?x=1")


def test_a_real_server_traces_requests_only_with_bindcnn_tracing(trained, server):
    """BentoML's OpenTelemetry middleware names each traced request in X-BentoML-Request-ID: absent by default."""
    import httpx

    from serving.service.launch import Server

    # POST /model is a BentoML API (GET /model is served by the mounted app, serving/service/routes.py)
    assert "x-bentoml-request-id" not in httpx.post(f"{server.url}/model", json={}, timeout=30).headers
    with Server(env={"BINDCNN_MODEL": trained["tag"], workers.TRACING_ENV: "1", workers.WORKERS_ENV: "1"}) as traced:
        assert "x-bentoml-request-id" in httpx.post(f"{traced.url}/model", json={}, timeout=30).headers
