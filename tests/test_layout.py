"""The house rules, checked on the source: imports point one way (nothing under serving/ imports training;
TensorFlow only in training/ and serving/attribution.py; the core imports no runtime or BentoML at load),
nothing imports tests/, and no module grows past 300 lines."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("serving", "training", "benchmarks")
TF_MODULES = {"tensorflow", "keras", "tf2onnx"}
CORE = ("serving/dna.py", "serving/fasta.py", "serving/artifact.py", "serving/store.py", "serving/plots.py",
        "serving/console.py", "serving/versions.py", "serving/genome.py", "serving/intervals.py")
MAX_LINES = 300


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


def test_nothing_under_serving_imports_training():
    offenders = [rel(p) for p in sources() if rel(p).startswith("serving/") and "training" in imported(p)]
    assert offenders == []


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
    assert lines <= MAX_LINES, f"{rel(path)}: {lines} lines (split it by job)"
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{rel(path)}: no module docstring"
