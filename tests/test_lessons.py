"""The course, run as an instructor runs it: every lesson executed in batch by papermill with its defaults, so every
exercise's solution runs and its check passes; and the course map lists every lesson with its time."""
import json
import time

import pytest

from conftest import LESSONS as FOLDER, ROOT, run_lesson

LESSONS = sorted(FOLDER.glob("[0-9]*.ipynb"))
# The case studies' lessons run their pipelines on the test profile: their end-to-end tests execute them (and then
# check the workspace they leave), so that each pipeline runs once in the suite.
BY_CASE_STUDY = {"14_medical_imaging.ipynb": "test_medical_imaging.py", "15_driving.ipynb": "test_driving.py",
                 "16_chatbot.ipynb": "test_chatbot.py"}
# The budget is 5 minutes a lesson on 2 cores (the course map lists each one's time); here a lesson shares the
# machine with another test, so the hard limit leaves room for that.
LIMIT_S = 420


def cells(path):
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("lesson", [p for p in LESSONS if p.name not in BY_CASE_STUDY], ids=lambda p: p.stem)
def test_the_lesson_runs_in_batch_with_papermill(lesson, tmp_path):
    started = time.monotonic()
    run_lesson(lesson.name, tmp_path / "workspace", timeout=LIMIT_S)
    print(f"{lesson.name}: {time.monotonic() - started:.0f} s")


def test_the_case_study_lessons_are_run_by_their_end_to_end_tests():
    for lesson, test in BY_CASE_STUDY.items():
        assert f'run_lesson("{lesson}"' in (ROOT / "tests" / test).read_text(), f"{test} no longer runs {lesson}"


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
    course_map = "".join("".join(c["source"]) for c in cells(FOLDER / "index.ipynb"))
    for lesson in LESSONS:
        assert f"({lesson.name})" in course_map, f"the course map does not link {lesson.name}"
    assert "TIME_" not in course_map, "the course map has a lesson without its measured time"
    for section in ("Principles and components", "Model types", "Training essentials", "Data and features",
                    "Deployment and serving", "Scaling", "Monitoring, explainability and safety", "Design patterns",
                    "Case studies", "From prototype to production"):
        assert section in course_map, f"the course map has no section {section!r}"
