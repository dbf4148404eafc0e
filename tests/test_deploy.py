"""deploy/ (Kubernetes manifests, base + GPU overlay) and the bentofiles that build their images: every manifest
validates against the Kubernetes API schema offline (kubernetes-validate), and the images, ports, probes and
environment variables they name are the ones the code, the bentofiles and the served app really use."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def strategic_merge(base, patch):
    """kubectl's strategic merge for what the overlay uses: maps merged key by key, lists of named items
    (containers, env, ports) merged by name, any other value replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: strategic_merge(base[k], v) if k in base else v for k, v in patch.items()}}
    named = lambda items: isinstance(items, list) and all(isinstance(x, dict) and "name" in x for x in items)
    if named(base) and named(patch):
        out = list(base)
        for item in patch:
            names = [x["name"] for x in out]
            if item["name"] in names:
                out[names.index(item["name"])] = strategic_merge(out[names.index(item["name"])], item)
            else:
                out.append(item)
        return out
    return patch


def kustomize(folder: Path) -> list[dict]:
    """The resources `kubectl apply -k folder` would send (resources and strategic-merge patches only)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs = []
    for entry in kustomization.get("resources", []):
        target = (folder / entry).resolve()
        docs += kustomize(target) if target.is_dir() else load(target)
    for patch_entry in kustomization.get("patches", []):
        for patch in load(folder / patch_entry["path"]):
            key = (patch["kind"], patch["metadata"]["name"])
            hits = [i for i, d in enumerate(docs) if (d["kind"], d["metadata"]["name"]) == key]
            assert hits, f"{patch_entry['path']} patches {key}, which is not in the resources"
            docs[hits[0]] = strategic_merge(docs[hits[0]], patch)
    return docs


VARIANTS = {"base": kustomize(DEPLOY / "base"), "gpu": kustomize(DEPLOY / "gpu")}
ALL = [(variant, doc) for variant, docs in VARIANTS.items() for doc in docs]


def find(docs: list[dict], kind: str, name: str) -> dict:
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} found"
    return hits[0]


def container(deployment: dict) -> dict:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


def env(c: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in c.get("env", [])}


def bentofile(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("variant, doc", ALL, ids=[f"{v}-{d['kind']}-{d['metadata']['name']}" for v, d in ALL])
def test_manifest_validates_against_the_kubernetes_schema(variant, doc, version):
    kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError with the path


def test_every_manifest_file_is_used():
    listed = set(yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in (DEPLOY / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    patches = {p["path"] for p in yaml.safe_load((DEPLOY / "gpu" / "kustomization.yaml").read_text())["patches"]}
    assert patches == {p.name for p in (DEPLOY / "gpu").glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_images_are_the_ones_the_bentofiles_and_container_script_build(variant):
    docs = VARIANTS[variant]
    predictor, explainer = find(docs, "Deployment", "bindcnn-predictor"), find(docs, "Deployment", "bindcnn-explainer")
    repo = lambda d: container(d)["image"].rsplit(":", 1)[0]
    script = (ROOT / "scripts" / "container.sh").read_text()
    if variant == "gpu":
        assert repo(predictor) == "bindcnn-gpu" and '"bindcnn-gpu:latest"' in script
        assert bentofile("bentofile.gpu.yaml")["service"] == bentofile("bentofile.yaml")["service"]
    else:
        assert repo(predictor) == bentofile("bentofile.yaml")["name"]
    assert repo(explainer) == bentofile("bentofile.explainer.yaml")["name"]
    assert bentofile("bentofile.yaml")["service"] == "serving.service.app:BindCNN"
    assert bentofile("bentofile.explainer.yaml")["service"] == "serving.service.explainer:Explainer"


def test_ports_services_and_selectors_line_up():
    import os

    from bentoml._internal.configuration import v2

    default = yaml.safe_load(Path(os.path.dirname(v2.__file__), "default_configuration.yaml").read_text())
    bento_port = default["services"]["http"]["port"]  # what `bentoml serve` in a Bento image listens on
    assert f":{bento_port}\"" in (ROOT / "scripts" / "container.sh").read_text()  # the port the script publishes
    for docs in VARIANTS.values():
        for deployment in (d for d in docs if d["kind"] == "Deployment"):
            spec, c = deployment["spec"], container(deployment)
            labels = spec["template"]["metadata"]["labels"]
            assert spec["selector"]["matchLabels"].items() <= labels.items()
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            assert ports == {"http": bento_port}
            services = [s for s in docs if s["kind"] == "Service" and s["spec"]["selector"].items() <= labels.items()]
            assert len(services) == 1, deployment["metadata"]["name"]
            assert [p["targetPort"] for p in services[0]["spec"]["ports"]] == ["http"]
            annotations = spec["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(bento_port)


def predictor_of(docs: list[dict]) -> dict:
    return container(find(docs, "Deployment", "bindcnn-predictor"))


def known_settings() -> set[str]:
    """Every BINDCNN_* environment variable the service code reads."""
    from serving.service import bentoml_compat, explainer_link, limits, workers
    from serving.store import MODEL_ENV, MODELS_ENV

    lims = limits.from_env()
    return {MODEL_ENV, MODELS_ENV, explainer_link.URL_ENV, workers.WORKERS_ENV, workers.THREADS_ENV, bentoml_compat.GRACE_ENV,
            *(getattr(lims, f).env for f in lims.__dataclass_fields__)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_environment_names_and_values_match_the_code(variant):
    docs = VARIANTS[variant]
    known = known_settings()
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        names = set(env(container(deployment)))
        assert {n for n in names if n.startswith("BINDCNN_")} <= known, names - known
        models = env(container(deployment))["BINDCNN_MODELS"]  # the model list (issue 26.5), the default first
        assert re.fullmatch(r"[\w.-]+:[\w.-]+(,[\w.-]+:[\w.-]+)*", models)
        assert models == env(predictor_of(docs))["BINDCNN_MODELS"]  # the explainer serves the predictor's models
    predictor = container(find(docs, "Deployment", "bindcnn-predictor"))
    explainer_service = find(docs, "Service", "bindcnn-explainer")
    url = urlsplit(env(predictor)["BINDCNN_EXPLAINER_URL"])
    assert url.scheme == "http" and url.hostname == explainer_service["metadata"]["name"]
    assert url.port == explainer_service["spec"]["ports"][0]["port"]
    assert "BINDCNN_EXPLAINER_URL" not in env(container(find(docs, "Deployment", "bindcnn-explainer")))
    limits = predictor["resources"]["limits"]
    per = int(limits["nvidia.com/gpu"]) if variant == "gpu" else int(limits["cpu"])  # one worker per GPU / core
    assert int(env(predictor)["BINDCNN_WORKERS"]) == per


def quantity(value) -> float:
    """A Kubernetes quantity (2, "500m", "1536Mi", "3Gi") as a number."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"([\d.]+)(m|Ki|Mi|Gi)?", str(value))
    assert match, value
    return float(match.group(1)) * units.get(match.group(2), 1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_probes_and_resources(variant):
    for deployment in (d for d in VARIANTS[variant] if d["kind"] == "Deployment"):
        c = container(deployment)
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert c["startupProbe"]["httpGet"]["path"] == "/readyz"
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert c[probe]["httpGet"]["port"] == "http"
        req, lim = c["resources"]["requests"], c["resources"]["limits"]
        for key in ("cpu", "memory"):
            assert quantity(req[key]) <= quantity(lim[key]), (deployment["metadata"]["name"], key)
    hpa = find(VARIANTS[variant], "HorizontalPodAutoscaler", "bindcnn-predictor")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "bindcnn-predictor")
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert find(VARIANTS[variant], "Deployment", "bindcnn-predictor")["spec"]["replicas"] >= hpa["spec"]["minReplicas"]


def test_probe_and_metrics_paths_answer_on_the_served_app(server):
    paths = set()
    for docs in VARIANTS.values():
        for deployment in (d for d in docs if d["kind"] == "Deployment"):
            c = container(deployment)
            paths |= {c[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe", "startupProbe")}
            paths.add(deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"])
    assert paths == {"/readyz", "/livez", "/metrics"}
    for path in sorted(paths):
        assert httpx.get(f"{server.url}{path}", timeout=30).status_code == 200, path


def _requirements(names: list[str]) -> dict[str, str]:
    """["numpy==2.4.6", "pyfaidx", ...] -> {normalized name (extras kept): version or ""}."""
    out = {}
    for spec in names:
        name, _, version = spec.partition("==")
        out[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return out


def test_bentofiles_keep_in_step_with_pyproject_and_the_lock():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = _requirements(project["dependencies"])
    explain = _requirements(project["optional-dependencies"]["explain"])
    lock = _requirements([line.split(";")[0].split("#")[0] for line in (ROOT / "requirements.lock").read_text()
                          .splitlines() if "==" in line and not line.startswith((" ", "#"))])
    pinned = lambda reqs: {n: v or lock[n] for n, v in reqs.items()}  # unpinned in pyproject: the lock's pin
    predictor = _requirements(bentofile("bentofile.yaml")["python"]["packages"])
    assert predictor == pinned(base)
    assert not {"tensorflow", "keras", "matplotlib", "logomaker", "pandas"} & set(predictor)
    gpu = _requirements(bentofile("bentofile.gpu.yaml")["python"]["packages"])
    assert {n.replace("[cuda,cudnn]", ""): v for n, v in gpu.items()} == pinned(base)
    assert "onnxruntime-gpu[cuda,cudnn]" in gpu
    assert _requirements(bentofile("bentofile.explainer.yaml")["python"]["packages"]) == {**pinned(base),
                                                                                           **pinned(explain)}
