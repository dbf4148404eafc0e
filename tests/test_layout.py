"""The house rules, checked on the source: imports point one way (nothing under serving/ imports training;
TensorFlow only in training/ and serving/attribution.py; the core imports no runtime or BentoML at load),
nothing imports tests/, no module reaches past another project's public API outside the one compat module,
and no module grows past MAX_LINES (a signal to look)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("serving", "training", "benchmarks")
TF_MODULES = {"tensorflow", "keras", "tf2onnx"}
CORE = ("serving/dna.py", "serving/fasta.py", "serving/artifact.py", "serving/store.py", "serving/plots.py",
        "serving/console.py", "serving/versions.py", "serving/genome.py", "serving/intervals.py")
# A signal, not a rule to split by: a module past this has likely taken a second job. The house guide says
# ~300 lines is when to look; a module stays whole while it does one job (look, then raise it with a reason).
MAX_LINES = 400


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def imported(path: Path, top_level_only: bool = False) -> set[str]:
    """Top-level package names a module imports (anywhere, or only at module level)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_checks_see_imports_anywhere_in_a_module(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os\n\ndef f():\n    from training.fit import fit\n    import tensorflow as tf\n")
    assert imported(probe) == {"os", "training", "tensorflow"}
    assert imported(probe, top_level_only=True) == {"os"}


# The one door from serving to training: the command line adds the training commands where they are installed,
# importing training.cli inside a function, never at module level (serving/cli/__init__.py, _training_cli).
TRAINING_DOOR = "serving/cli/__init__.py"


def test_nothing_under_serving_imports_training():
    offenders = [rel(p) for p in sources() if rel(p).startswith("serving/") and "training" in imported(p)]
    assert offenders == [TRAINING_DOOR]
    door = ast.parse((ROOT / TRAINING_DOOR).read_text())
    assert "training" not in imported(ROOT / TRAINING_DOOR, top_level_only=True)
    reaches = [a.name for n in ast.walk(door) if isinstance(n, ast.Import) for a in n.names
               if a.name.split(".")[0] == "training"]
    reaches += [n.module for n in ast.walk(door) if isinstance(n, ast.ImportFrom) and n.module
                and n.module.split(".")[0] == "training"]
    assert reaches == ["training.cli"]


def test_tensorflow_only_in_training_and_the_attribution_runtime():
    allowed = lambda r: r.startswith("training/") or r == "serving/attribution.py" or r.startswith("benchmarks/")
    offenders = [rel(p) for p in sources() if imported(p) & TF_MODULES and not allowed(rel(p))]
    assert offenders == []


def test_the_core_loads_no_runtime_and_no_bentoml():
    heavy = TF_MODULES | {"onnxruntime", "bentoml", "h5py"}
    offenders = {r: sorted(imported(ROOT / r, top_level_only=True) & heavy) for r in CORE}
    assert {r: v for r, v in offenders.items() if v} == {}


def test_nothing_imports_tests():
    assert [rel(p) for p in sources() if "tests" in imported(p)] == []


@pytest.mark.parametrize("path", sources(), ids=rel)
def test_module_is_small_and_says_why_it_exists(path):
    lines = path.read_text().count("\n")
    assert lines <= MAX_LINES, f"{rel(path)}: {lines} lines: has it taken a second job? (group by feature)"
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{rel(path)}: no module docstring"


COMPAT = "serving/service/bentoml_compat.py"  # the one module allowed to reach past BentoML's public API
OWN = {"serving", "training", "benchmarks", "tests"}
PUBLIC_UNDERSCORED = {"_exit", "_replace", "_asdict", "_fields", "_make"}  # os._exit; namedtuple's documented API


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_UNDERSCORED


def private_reaches(path: Path) -> list[str]:
    """Where a module imports another project's private module (`_internal`, `_bentoml_impl`, ...), reads a
    single-underscore attribute of something that is not its own (self, cls, or one of this project's modules),
    or assigns an attribute of another project's module or class."""
    tree = ast.parse(path.read_text(), filename=str(path))
    foreign = set()  # names bound to other projects' modules/objects by imports
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in OWN:
                foreign.update(a.asname or a.name for a in node.names)
                if any(_private(part) for part in node.module.split(".")):
                    out.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] not in OWN:
                    foreign.add((a.asname or a.name).split(".")[0])
                if any(_private(part) for part in a.name.split(".")):
                    out.append(f"line {node.lineno}: import {a.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            if not (isinstance(base, ast.Name) and base.id in ("self", "cls")):
                if isinstance(base, ast.Name) and base.id in foreign or not isinstance(base, ast.Name):
                    out.append(f"line {node.lineno}: .{node.attr}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr",
                "hasattr") and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str) and _private(node.args[1].value)):
            out.append(f"line {node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                root = t
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(t, ast.Attribute) and isinstance(root, ast.Name) and root.id in foreign:
                    out.append(f"line {node.lineno}: assigns {ast.unparse(t)}")
    return out


def test_the_checks_see_private_reaches(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import threading\nfrom bentoml._internal.context import server_context\n"
                     "import onnxruntime as ort\nort.InferenceSession.run = None\n"
                     "def f(session, x):\n    threading._shutdown()\n    getattr(session, '_sess')\n"
                     "    return session.inner._sess, x._private, self._mine\n")
    found = private_reaches(probe)
    assert sorted(f.split(": ", 1)[1] for f in found) == sorted([
        "from bentoml._internal.context import ...", "._shutdown", "._sess", "assigns ort.InferenceSession.run",
        "getattr(..., '_sess')"])


@pytest.mark.parametrize("path", [p for p in sources() if rel(p).split("/")[0] in ("serving", "training")], ids=rel)
def test_no_private_internals_of_other_projects_outside_the_compat_module(path):
    if rel(path) == COMPAT:
        return
    assert private_reaches(path) == [], f"{rel(path)} reaches into another project (only {COMPAT} may)"
