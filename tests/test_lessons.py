"""The course, run as an instructor runs it: every lesson executed in batch by papermill with its defaults, so every
exercise's solution runs and its check passes; and the course map lists every lesson."""
import json
import os
import time

import pytest

from conftest import BIN, ROOT, run

LESSONS = sorted((ROOT / "nbs" / "lessons").glob("[0-9]*.ipynb"))
# The budget is 5 minutes a lesson on 2 cores (the course map lists each one's time); here a lesson shares the
# machine with another test, so the hard limit leaves room for that.
LIMIT_S = 420


def cells(path):
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_the_lesson_runs_in_batch_with_papermill(lesson, tmp_path):
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "workspace"), "WORKBENCH_PROGRESS": "0",
           "MPLBACKEND": "agg"}
    started = time.monotonic()
    run([BIN / "papermill", lesson, tmp_path / lesson.name, "-k", "workbench", "--cwd", lesson.parent,
         "-p", "workspace", tmp_path / "workspace", "--log-level", "ERROR"], env=env, timeout=LIMIT_S)
    executed = cells(tmp_path / lesson.name)
    errors = [o for c in executed if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert not errors, f"{lesson.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    print(f"{lesson.name}: {time.monotonic() - started:.0f} s")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_exercise_has_a_hidden_solution_and_a_check(lesson):
    "A solution is a cell tagged `solution` (hidden in JupyterLab and on the site); the cell after it checks."
    source = [(c, "".join(c["source"])) for c in cells(lesson)]
    solutions = [i for i, (c, _) in enumerate(source) if "solution" in c["metadata"].get("tags", [])]
    assert len(solutions) >= 2, f"{lesson.name} has {len(solutions)} exercises with a solution (at least 2)"
    for i in solutions:
        cell, text = source[i]
        assert "hide-input" in cell["metadata"]["tags"] and cell["metadata"].get("jupyter", {}).get("source_hidden")
        check = source[i + 1][1] if i + 1 < len(source) else ""
        assert "assert" in check and "right" in check, f"{lesson.name}: no check cell after the solution\n{text}"


def test_the_course_map_lists_every_lesson_and_every_seed_section():
    course_map = "".join("".join(c["source"]) for c in cells(ROOT / "nbs" / "lessons" / "index.ipynb"))
    for lesson in LESSONS:
        assert f"({lesson.name})" in course_map, f"the course map does not link {lesson.name}"
    for section in ("Principles and components", "Model types", "Training essentials", "Data and features",
                    "Deployment and serving", "Scaling", "Monitoring, explainability and safety", "Design patterns",
                    "Case studies", "From prototype to production"):
        assert section in course_map, f"the course map has no section {section!r}"
