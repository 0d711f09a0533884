"""The README's first command: `make run` executes the tour with papermill into the workspace;
re-running the set-up on an up-to-date environment installs nothing."""
import json
import os

import nbformat

from conftest import ROOT, run


def test_make_run_executes_the_tour_into_the_workspace(tmp_path):
    result = run(["make", "--no-print-directory", "run", f"WORKSPACE={tmp_path}"], timeout=600)
    executed = tmp_path / "notebooks" / "00_tour.ipynb"
    assert executed.is_file(), result.stdout
    nb = nbformat.read(executed, as_version=4)
    assert nb.metadata.papermill.exception in (None, False)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and str(tmp_path) in injected[0].source
    summary = json.loads((tmp_path / "notebooks" / "tour" / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.9
    assert (tmp_path / "notebooks" / "tour" / "loss.png").stat().st_size > 1000


def test_setup_on_an_up_to_date_environment_installs_nothing():
    venv = (ROOT / ".venv").resolve()
    before = {p: p.stat().st_mtime_ns for p in (venv / "lib").glob("python3*/site-packages/*.dist-info")}
    result = run(["bash", "tools/venv.sh"], timeout=120)
    assert result.stdout.strip() == "", f"set-up did work on an up-to-date environment:\n{result.stdout}"
    after = {p: p.stat().st_mtime_ns for p in (venv / "lib").glob("python3*/site-packages/*.dist-info")}
    assert before == after
    assert os.readlink(ROOT / ".venv") == str(venv)
