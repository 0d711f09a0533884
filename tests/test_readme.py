"""The README and the docs home say what the project does: their code runs as written, and they, the Makefile and the
CLI's help name the same main job."""
import json
import os
import re

from conftest import BIN, ROOT, run
from workbench.governance import Governance
from workbench.registry import Registry

MAIN_JOB = "workbench pipeline run pipelines/reference/pipeline.yaml --profile cpu-small"


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_the_readme_examples_run_as_written_in_order_in_a_fresh_workspace(tmp_path):
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 4, "the README's Python examples went missing"
    script = tmp_path / "readme.py"
    script.write_text("\n".join(blocks))
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "workspace"), "WORKBENCH_PROGRESS": "0",
           "MPLBACKEND": "agg"}
    result = run([BIN / "python", script], cwd=tmp_path, env=env, timeout=300)
    assert "name: tickets-dedup" in result.stdout                 # the dataset card was printed
    gov = Governance(Registry(tmp_path / "workspace" / "registry" / "registry.db"))
    assert gov.registry.resolve("digits@production")["version"] == 1 and gov.audit.verify() > 0


def test_readme_home_page_makefile_and_cli_name_the_same_main_job():
    home = "".join("".join(c["source"]) for c in json.loads((ROOT / "nbs" / "index.ipynb").read_text())["cells"])
    makefile = (ROOT / "Makefile").read_text()
    cli_help = run([BIN / "workbench", "pipeline", "--help"]).stdout
    for name, text in {"README.md": (ROOT / "README.md").read_text(), "nbs/index.ipynb": home,
                       "Makefile": makefile, "workbench pipeline --help": cli_help}.items():
        assert MAIN_JOB in " ".join(text.split()), f"{name} does not name the main job as `{MAIN_JOB}`"
    assert "executes the [tour]" not in home, "the home page still describes the old main job"
