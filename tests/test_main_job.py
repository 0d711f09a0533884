"""The README's commands share one set-up: re-running it on an up-to-date environment installs nothing.
(`make run` itself, the reference pipeline, is tested in test_pipeline.py.)"""
import os

from conftest import ROOT, run


def test_setup_on_an_up_to_date_environment_installs_nothing():
    venv = (ROOT / ".venv").resolve()
    before = {p: p.stat().st_mtime_ns for p in (venv / "lib").glob("python3*/site-packages/*.dist-info")}
    result = run(["bash", "tools/venv.sh"], timeout=120)
    assert result.stdout.strip() == "", f"set-up did work on an up-to-date environment:\n{result.stdout}"
    after = {p: p.stat().st_mtime_ns for p in (venv / "lib").glob("python3*/site-packages/*.dist-info")}
    assert before == after
    assert os.readlink(ROOT / ".venv") == str(venv)
