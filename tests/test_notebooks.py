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


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if {"lessons", "pipelines", "case_studies"} & set(p.parts)],
                         ids=lambda p: p.name)
def test_lessons_have_one_parameters_cell_and_export_nothing(path):
    cells = json.loads(path.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters' for papermill"
    assert not any("#| export" in "".join(c["source"]) or "default_exp" in "".join(c["source"]) for c in cells)
