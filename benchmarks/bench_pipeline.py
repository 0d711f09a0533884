"""Per-step overhead of notebook pipelines: a chain of six steps, each a fresh kernel, with kernels started on demand
(papermill's way: `warm=False`) vs started ahead of use by the `KernelPool` (`warm=True`, the default).

Two chains: empty steps (pure overhead: kernel start, papermill, the runner) and steps that import torch and the
workbench (what a real step pays before doing anything). Each step is still a fresh process in both modes.
A third row: the importing chain with `preload` (warm kernels import torch and the workbench while they wait)
against warm kernels without it.
"""
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

from workbench.pipeline import run_pipeline

STEPS = 6
BODIES = {"empty": "x = i + 1", "imports torch + workbench": "import torch\nimport workbench.train\nx = i + 1"}


def chain(root: Path, name: str, body: str, preload: list[str] = ()) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("i = 0", metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / f"{name}.ipynb")
    steps = {f"s{i}": {"notebook": f"{name}.ipynb", "parameters": {"i": i}, **({"after": [f"s{i - 1}"]} if i else {})}
             for i in range(STEPS)}
    spec = root / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({"name": name, "steps": steps, "preload": list(preload)}))
    return spec


def run() -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, body in BODIES.items():
            spec = chain(Path(tmp), label.split()[0], body)
            seconds = {}
            for warm in (False, True):
                start = time.perf_counter()
                run_pipeline(spec, workspace=Path(tmp) / f"ws-{warm}", warm=warm)   # separate workspaces: no cache hits
                seconds[warm] = (time.perf_counter() - start) / STEPS
            rows.append({"name": f"seconds per step, {STEPS}-step chain, {label}", "ours": seconds[True],
                         "baseline": seconds[False], "baseline_name": "kernels started on demand"})
        spec = chain(Path(tmp), "preloaded", BODIES["imports torch + workbench"], preload=["torch", "workbench.train"])
        start = time.perf_counter()
        run_pipeline(spec, workspace=Path(tmp) / "ws-preloaded")
        rows.append({"name": f"seconds per step, {STEPS}-step chain, imports torch + workbench, preloaded",
                     "ours": (time.perf_counter() - start) / STEPS, "baseline": rows[-1]["ours"],
                     "baseline_name": "warm kernels without preload"})
    return rows
