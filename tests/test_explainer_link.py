"""serving.service.explainer_link through real servers: the explainer served alone and a predictor calling it by
URL (`bindcnn serve --explainer-only` / `--explainer-url`, no TensorFlow in any predictor worker), a predictor
without TensorFlow and without a URL (503 naming the setting), a down explainer, and /readyz under saliency load."""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from serving.dna import random_dna
from serving.service.explainer_link import URL_ENV
from serving.service.launch import Server, free_port

BINDCNN = Path(sys.executable).parent / "bindcnn"
# Makes a Python process behave as if the explain extra were not installed (tensorflow, keras, matplotlib,
# logomaker, pandas): imports and importlib.util.find_spec fail. Put on PYTHONPATH as sitecustomize.py.
NO_EXPLAIN = '''
import sys
BLOCKED = {"tensorflow", "keras", "tf_keras", "matplotlib", "logomaker", "pandas"}
class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None
sys.meta_path.insert(0, _Blocked())
'''


class CliServer(Server):
    """`bindcnn serve ARGS` instead of a bare `bentoml serve`: same readiness wait and stop()."""

    def __init__(self, cli_args: list[str], **kwargs):
        super().__init__(**kwargs)
        self.cli_args = cli_args

    def command(self) -> list[str]:
        return [str(BINDCNN), "serve", "--host", self.host, "--port", str(self.port), *self.cli_args]


def tensorflow_mapped(pids: list[int]) -> dict[int, bool]:
    """pid -> whether libtensorflow is in its memory map (a process that loaded TensorFlow has it)."""
    out = {}
    for pid in pids:
        try:
            out[pid] = "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()
        except OSError:  # gone
            pass
    return out


def no_explain_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(NO_EXPLAIN)
    return {"PYTHONPATH": str(tmp_path)}


@pytest.fixture(scope="module")
def seqs(trained) -> list[str]:
    return random_dna(3, trained["meta"]["sequence_length"], seed=11)


@pytest.fixture(scope="module")
def explainer(trained):
    with CliServer(["--explainer-only"], env={"BINDCNN_MODEL": trained["tag"]}) as srv:
        yield srv


@pytest.fixture(scope="module")
def predictor(trained, explainer):
    with CliServer(["--explainer-url", explainer.url, "--workers", "2"], env={"BINDCNN_MODEL": trained["tag"]}) as srv:
        yield srv


def test_saliency_goes_through_the_url_and_no_predictor_worker_loads_tensorflow(explainer, predictor, seqs):
    got = httpx.post(f"{predictor.url}/saliency", json={"sequences": seqs}, timeout=120)
    assert got.status_code == 200, got.text
    direct = httpx.post(f"{explainer.url}/saliency", json={"sequences": seqs}, timeout=120)
    assert direct.status_code == 200, direct.text
    scores = np.asarray(got.json()["scores"])
    assert scores.shape == (3, len(seqs[0]), 4) and np.abs(scores).sum() > 0
    np.testing.assert_allclose(scores, np.asarray(direct.json()["scores"], np.float32), rtol=0, atol=1e-6)
    delta = got.json()["convergence_delta"]  # the default method, expected gradients: one gap per map
    assert len(delta) == 3 and delta == direct.json()["convergence_delta"]
    logo = httpx.post(f"{predictor.url}/saliency_logo", json={"sequence": seqs[0]}, timeout=120)
    assert logo.status_code == 200 and logo.content.startswith(b"\x89PNG"), logo.text[:300]

    info = httpx.get(f"{predictor.url}/model", timeout=30).json()
    assert info["tensorflow_loaded"] is False
    assert info["explainer"]["mode"] == "url" and info["explainer"]["url"] == explainer.url
    assert info["explainer"]["tensorflow_loaded"] is True
    # Every process of the predictor's server (bindcnn, bentoml serve, its 2 workers) is free of TensorFlow;
    # the check itself sees it in the explainer's worker.
    predictor_maps = tensorflow_mapped(predictor.workers())
    assert len(predictor_maps) >= 4 and not any(predictor_maps.values()), predictor_maps
    assert any(tensorflow_mapped(explainer.workers()).values())


def test_a_down_explainer_leaves_predictions_and_readiness_alone(trained, seqs):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with Server(env={"BINDCNN_MODEL": trained["tag"], URL_ENV: url}) as srv:
        assert httpx.get(f"{srv.url}/readyz", timeout=10).status_code == 200
        assert httpx.post(f"{srv.url}/predict", json={"sequences": seqs}, timeout=30).status_code == 200
        r = httpx.post(f"{srv.url}/saliency", json={"sequences": seqs[:1]}, timeout=60)
        assert r.status_code == 503 and url in r.text, r.text
        assert "explainer unavailable" in httpx.get(f"{srv.url}/model", timeout=30).json()["explainer"]["error"]


def test_predictor_without_tensorflow_and_without_url_says_what_to_set(trained, seqs, tmp_path):
    with Server(env={"BINDCNN_MODEL": trained["tag"], URL_ENV: "", **no_explain_env(tmp_path)}) as srv:
        r = httpx.post(f"{srv.url}/predict", json={"sequences": seqs}, timeout=30)
        assert r.status_code == 200 and len(r.json()["probability"]) == 3
        assert httpx.post(f"{srv.url}/mutagenesis", json={"sequence": seqs[0]}, timeout=60).status_code == 200
        for path, body in (("/saliency", {"sequences": seqs[:1]}), ("/saliency_logo", {"sequence": seqs[0]})):
            r = httpx.post(f"{srv.url}{path}", json=body, timeout=30)
            assert r.status_code == 503 and URL_ENV in r.text and "bindcnn[explain]" in r.text, (path, r.text)
        r = httpx.post(f"{srv.url}/mutagenesis_logo", json={"sequence": seqs[0]}, timeout=30)
        assert r.status_code == 503 and "bindcnn[explain]" in r.text, r.text
        assert URL_ENV in httpx.get(f"{srv.url}/model", timeout=30).json()["explainer"]["error"]
        maps = tensorflow_mapped(srv.workers())
        assert len(maps) >= 2 and not any(maps.values()), maps


def test_serve_refuses_bad_explainer_options(trained, tmp_path):
    import os
    import subprocess

    env = {**os.environ, "BINDCNN_MODEL": trained["tag"]}
    bad_url = subprocess.run([str(BINDCNN), "serve", "--explainer-url", "localhost:3001"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert bad_url.returncode == 2 and "http://" in bad_url.stderr
    no_tf = subprocess.run([str(BINDCNN), "serve", "--explainer-only"], env={**env, **no_explain_env(tmp_path)},
                           capture_output=True, text=True, timeout=60)
    assert no_tf.returncode == 2 and "bindcnn[explain]" in no_tf.stderr


async def _saliency_load_with_probes(url: str, seqs: list[str], seconds: float) -> list:
    """6 clients on /saliency and 2 on /predict for `seconds`, /readyz + /livez asked every 0.2 s: the probes'
    (path, status or error name)."""
    stop = time.monotonic() + seconds
    probes = []

    async def hammer(client, path, body):
        while time.monotonic() < stop:
            await client.post(path, json=body)

    async def probe(path):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            while time.monotonic() < stop:
                try:
                    probes.append((path, (await client.get(path)).status_code))
                except httpx.HTTPError as exc:
                    probes.append((path, type(exc).__name__))
                await asyncio.sleep(0.2)

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await asyncio.gather(*[hammer(client, "/saliency", {"sequences": seqs[:1]}) for _ in range(6)],
                             *[hammer(client, "/predict", {"sequences": seqs}) for _ in range(2)],
                             probe("/readyz"), probe("/livez"))
    return probes


def test_readyz_never_hangs_under_saliency_load(trained, seqs):
    """BentoML's own dependency probe left /readyz unanswered for 30 s and more under this load (it never
    released its response); the predictor's readiness no longer goes through it."""
    with Server(env={"BINDCNN_MODEL": trained["tag"]}) as srv:  # explainer in-process, the case that hung
        probes = asyncio.run(_saliency_load_with_probes(srv.url, seqs, seconds=8))
    assert len(probes) > 10
    assert all(status == 200 for _, status in probes), [p for p in probes if p[1] != 200]
