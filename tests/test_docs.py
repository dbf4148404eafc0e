"""The documentation stays true to the tree: a short README with the two set-up commands that links every page of
docs/, relative links that lead somewhere, module paths that exist, and a layout page that names every module."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_BYTES = 12_000
SETUP_COMMANDS = ["make serve", "make test"]
# [text](target) outside code; the target up to whitespace or ')'; images too
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MODULE_PATH = re.compile(r"\b((?:serving|training)/[\w/]+\.py)\b")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def pages() -> list[Path]:
    """README.md, docs/*.md and benchmarks/*.md: every page a reader follows links in."""
    return [README, *sorted(DOCS.glob("*.md")), *sorted((ROOT / "benchmarks").glob("*.md"))]


def prose(text: str) -> str:
    """The text without its fenced code blocks (a shell example is not a link)."""
    return FENCE.sub("", text)


def code_lines(text: str) -> list[str]:
    """Every line inside a fenced code block, without its trailing comment."""
    lines = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M):
        lines += [line.split("#")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line]


def relative_links(page: Path) -> list[str]:
    """Targets of the page's links that point into the repository (no scheme, no pure #anchor)."""
    targets = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue
        targets.append(target.split("#")[0])
    return targets


def package_modules() -> set[str]:
    """serving/**/*.py and training/**/*.py, as paths from the root, without __init__ and __main__."""
    return {p.relative_to(ROOT).as_posix() for package in ("serving", "training")
            for p in (ROOT / package).rglob("*.py")
            if p.stem not in ("__init__", "__main__") and "__pycache__" not in p.parts}


def test_readme_is_short():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; keep it <= {README_MAX_BYTES} and move detail to docs/"


def test_readme_has_exactly_the_two_setup_commands():
    text = README.read_text()
    section = re.search(r"^## Set up.*?(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Set up' section"
    assert code_lines(section.group(0)) == SETUP_COMMANDS
    make_lines = [line for line in code_lines(text) if re.match(r"^make\b", line)]
    assert make_lines == SETUP_COMMANDS, f"README.md's only make commands must be {SETUP_COMMANDS}: {make_lines}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t).resolve() for t in relative_links(README)}
    pages_ = sorted(DOCS.glob("*.md"))
    assert pages_, "docs/ has no pages"
    missing = [p.name for p in pages_ if p.resolve() not in linked]
    assert not missing, f"docs pages not linked from README.md: {missing}"


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files(page):
    broken = [t for t in relative_links(page) if t and not (page.parent / t).exists()]
    assert not broken, f"{page.relative_to(ROOT)} links to files that do not exist: {broken}"


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md")), ROOT / "models" / "README.md",
                                  ROOT / "benchmarks" / "RESULTS-gpu.md",
                                  ROOT / "benchmarks" / "RESULTS-reliability.md"],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_paths_named_in_pages_exist(page):
    gone = sorted({m for m in MODULE_PATH.findall(page.read_text()) if not (ROOT / m).is_file()})
    assert not gone, f"{page.relative_to(ROOT)} names modules that do not exist: {gone}"


def test_layout_page_names_every_module_and_only_those():
    named = set(MODULE_PATH.findall((DOCS / "layout.md").read_text()))
    modules = package_modules()
    assert not modules - named, f"modules missing from docs/layout.md: {sorted(modules - named)}"
    assert not named - modules, f"docs/layout.md names modules that do not exist: {sorted(named - modules)}"


def test_the_checks_see_what_they_should(tmp_path):
    """The parsers behind the tests above: a link inside a code block is not a link, an anchor is dropped, a URL is
    not relative, and a module path is found in prose and tables alike."""
    page = tmp_path / "p.md"
    page.write_text("See [a](docs/a.md#x), [b](https://x.org/b.md), [c](#here).\n```\n[d](nope.md)\n```\n"
                    "| `serving/dna.py` | x |\n")
    assert relative_links(page) == ["docs/a.md"]
    assert MODULE_PATH.findall(page.read_text()) == ["serving/dna.py"]
    assert code_lines("```bash\nmake serve   # go\n\nmake test\n```\n") == SETUP_COMMANDS
