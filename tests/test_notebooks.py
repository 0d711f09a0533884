"""House rules for notebooks that tools depend on, checked statically (fast, with a precise message)."""
import ast
import json
from pathlib import Path

import pytest

from conftest import ROOT

NOTEBOOKS = sorted(p for folder in ("nbs", "pipelines", "case_studies") for p in (ROOT / folder).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)


def code_cells(path: Path):
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] == "code":
            yield index, "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_have_cells_of_their_own(path):
    "nbdev_proc_nbs executes import cells alone to render docs: a cell mixing imports and code breaks the docs."
    for index, source in code_cells(path):
        if "nbdev_export()" in source:
            continue  # nbdev's own closing cell
        body = ast.parse("\n".join(l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))))
        kinds = {isinstance(node, (ast.Import, ast.ImportFrom)) for node in body.body}
        assert kinds != {True, False}, f"{path.name} cell {index} mixes imports with other code:\n{source[:300]}"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if {"lessons", "pipelines", "case_studies"} & set(p.parts)
                                  and p.name != "index.ipynb"],                 # the course map runs nothing
                         ids=lambda p: p.name)
def test_lessons_have_one_parameters_cell_and_export_nothing(path):
    cells = json.loads(path.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters' for papermill"
    assert not any("#| export" in "".join(c["source"]) or "default_exp" in "".join(c["source"]) for c in cells)


LINE_LIMIT = 120
SOURCES = sorted(p for folder in ("tests", "benchmarks", "tools", "pipelines") for p in (ROOT / folder).rglob("*.py"))


def long_lines(text: str) -> list[str]:
    return [f"{len(line)} characters: {line.strip()[:80]}…" for line in text.splitlines() if len(line) > LINE_LIMIT]


@pytest.mark.parametrize("path", NOTEBOOKS + SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_lines_fit_the_limit(path):
    "The house limit (120 characters) on every code line we write: notebook code cells and the scripts beside them."
    sources = [source for _, source in code_cells(path)] if path.suffix == ".ipynb" else [path.read_text()]
    too_long = [line for source in sources for line in long_lines(source)]
    assert not too_long, f"{path.relative_to(ROOT)} has lines over {LINE_LIMIT} characters:\n" + "\n".join(too_long[:5])
