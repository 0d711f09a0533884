"""The test command's guards fail loudly, naming the check: a hand-edited module, an unclean notebook.

Each case runs tools/check.sh on a scratch copy of the project with one defect planted."""
import json

from conftest import copy_project, run


def test_hand_edited_module_fails_the_sync_check(tmp_path):
    project = copy_project(tmp_path / "project")
    core = project / "workbench" / "core.py"
    core.write_text(core.read_text().replace("def seed_everything(", "def seed_everything_edited(", 1))
    result = run(["bash", "tools/check.sh"], cwd=project, check=False, timeout=300)
    assert result.returncode != 0
    assert "FAILED check 1/4 (sync)" in result.stderr
    assert "seed_everything_edited" in result.stdout  # the diff shows what export would undo


def test_execution_count_in_a_notebook_fails_the_clean_check(tmp_path):
    project = copy_project(tmp_path / "project")
    path = project / "nbs" / "00_core.ipynb"
    nb = json.loads(path.read_text())
    next(c for c in nb["cells"] if c["cell_type"] == "code")["execution_count"] = 7
    path.write_text(json.dumps(nb, indent=1))
    result = run(["bash", "tools/check.sh"], cwd=project, check=False, timeout=300)
    assert result.returncode != 0
    assert "FAILED check 2/4 (clean)" in result.stderr
    assert "00_core.ipynb" in result.stdout
