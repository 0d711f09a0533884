"""The README's first command, `make run`: the reference pipeline end to end through the CLI, on its small profile.
Then: a second run is fully cached; a changed parameter re-runs only its step; a broken step fails with its name, cell
and exception, its branch stops, and `resume` completes the run once it is fixed; bad specs are refused up front."""
import json
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import BIN, ROOT, run
from workbench.governance import ComplianceError, Governance
from workbench.readiness import Readiness
from workbench.registry import Registry
from workbench.tracking import RunStore, final_metrics


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    "`make run` into a fresh workspace; its run record, wall time and output."
    ws = tmp_path_factory.mktemp("pipeline") / "ws"
    start = time.monotonic()
    result = run(["make", "--no-print-directory", "run", f"WORKSPACE={ws}"], timeout=900)
    seconds = time.monotonic() - start
    report = result.stdout.strip().splitlines()[-1].removeprefix("report: ")
    record = json.loads((ws / "pipelines" / "reference" / report.split("/")[-2] / "run.json").read_text())
    return {"ws": ws, "record": record, "seconds": seconds, "stdout": result.stdout, "report": report,
            "report_html": Path(report).read_text()}


def cli(ws, *args, check=True):
    return run([BIN / "workbench", "pipeline", *map(str, args), "--workspace", ws], timeout=900, check=check)


def test_make_run_runs_the_reference_pipeline(first):
    record = first["record"]
    assert record["status"] == "succeeded"
    assert {s["status"] for s in record["steps"].values()} == {"ok"}
    steps = record["steps"]
    assert steps["evaluate"]["outputs"]["accuracy"] > 0.65
    assert steps["serve"]["outputs"]["requests_ok"] == 40
    monitored = steps["monitor"]["outputs"]
    assert monitored["dataset_drift"] is True and monitored["alerts"] == ["dataset_drift"]
    assert steps["register"]["outputs"]["model"] == "churn@1" and steps["retrain"]["outputs"]["model"] == "churn@2"
    assert first["report"].endswith("report.html") and "✓ retrain" in first["stdout"]
    html = open(first["report"]).read()
    assert "retrain" in html and "data:image/png;base64," in html
    assert first["seconds"] < 300, f"the main job took {first['seconds']:.0f} s (budget: 5 minutes on 2 cores)"
    gov = Governance(Registry(first["ws"] / "registry" / "registry.db"))
    assert gov.registry.resolve("churn@staging")["version"] == 2
    assert {"register", "approve", "promote", "alert"} <= {e["action"] for e in gov.audit.entries()}
    assert gov.audit.verify() > 0 and gov.audit.unfinished() == []
    ws = first["ws"]                         # secrets and personal data: owner-only from their creation
    for private in (ws / "audit" / "pipeline-keys.json", ws / "registry" / "registry.db", gov.audit.path,
                    gov.predictions.path):
        assert oct(private.stat().st_mode & 0o777) == "0o600", private
    tracked = final_metrics(RunStore(ws / "runs" / "runs.db"), gov.registry.resolve("churn@1")["run_id"])
    assert gov.registry.resolve("churn@1")["metrics"]["accuracy"] == tracked["accuracy"]   # the record is the run's


def test_the_run_is_judged_for_readiness_and_production_needs_the_report_complete(first):
    "The design checklist over the main job: in its report, from evidence; the production gate refuses what is missing."
    folder = Path(first["report"]).parent
    judged = json.loads((folder / "readiness.json").read_text())
    items = judged["items"]
    assert judged["model"] == "churn@1" and first["record"]["readiness"].startswith("readiness ")
    for ready in ("success_metrics", "data_validated", "model_choice", "feature_store", "serving", "observability",
                  "governance"):
        assert items[ready]["status"] == "ready", (ready, items[ready])
    assert items["success_metrics"]["evidence"].startswith("accuracy ")
    assert "serve.p95_ms" in items["serving"]["evidence"]
    assert items["safety"]["status"] == "missing" and "robustness_report" in items["safety"]["todo"]
    assert "Readiness: churn@1" in first["report_html"] and "readiness" in first["stdout"]
    ws = first["ws"]
    gov = Governance(Registry(ws / "registry" / "registry.db"))
    keys = json.loads((ws / "audit" / "pipeline-keys.json").read_text())
    gov.approve(keys["reviewer"], gov.request(keys["data-scientist"], "churn", 1, "production"))
    with pytest.raises(ComplianceError, match="no readiness report is attached, and production needs one"):
        gov.promote(keys["release-manager"], "churn", 1, "production")
    Readiness(judged["model"], judged["run"], items).attach(gov, keys["data-scientist"], folder / "readiness.json")
    with pytest.raises(ComplianceError, match="readiness item safety is missing: test the model's safety"):
        gov.promote(keys["release-manager"], "churn", 1, "production")
    assert gov.registry.resolve("churn@1")["stage"] != "production"
    refused = [e for e in gov.audit.entries() if e["action"] == "promote" and e["outcome"] == "refused"]
    assert len(refused) == 2 and "readiness item safety" in " ".join(refused[-1]["details"]["failures"])


def test_the_run_report_fits_a_laptop_screen(first, tmp_path):
    "No sideways scrolling at 1366 pixels: long parameters and outputs are folded, cells wrap."
    probe = tmp_path / "report.html"
    probe.write_text(first["report_html"].replace("</body>", "<script>document.body.dataset.fit = "
                                                  "document.documentElement.scrollWidth + '/' + innerWidth</script>"
                                                  "</body>"))
    dom = run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1366,900",
               f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probe.as_uri()], timeout=120).stdout
    scroll, width = map(int, re.search(r'data-fit="(\d+)/(\d+)"', dom).groups())
    assert scroll <= width, f"the report is {scroll} px wide in a {width} px window"
    assert "<details><summary>" in first["report_html"]                     # a long value, folded


def test_second_run_is_cached_and_a_changed_parameter_reruns_only_its_step(first):
    ws = first["ws"]
    walls = []
    for _ in range(3):      # the best of three: the other test worker shares the two cores with this timing
        start = time.monotonic()
        again = cli(ws, "run", ROOT / "pipelines/reference/pipeline.yaml", "--profile", "cpu-small")
        walls.append(time.monotonic() - start)
        assert again.stdout.count("↺") == 9 and "▶" not in again.stdout
        run_id = again.stdout.split(" run ")[1].split()[0]
        record = json.loads((ws / "pipelines/reference" / run_id / "run.json").read_text())
        assert record["status"] == "succeeded" and {s["status"] for s in record["steps"].values()} == {"cached"}
    cached_seconds = min(walls)
    # the whole command, process start to exit, against the whole first `make run`: no papermill, torch, pandas or
    # kernel
    assert cached_seconds <= 0.05 * first["seconds"], (walls, first["seconds"])
    print(f"first run {first['seconds']:.1f} s wall; cached run {cached_seconds:.2f} s wall ({record['seconds']:.3f} s "
          f"in the runner)")
    # the cause, checked without a clock: a cached run never imports the heavy stacks
    traced = run([BIN / "python", "-X", "importtime", BIN / "workbench", "pipeline", "run",
                  ROOT / "pipelines/reference/pipeline.yaml", "--profile", "cpu-small", "--workspace", ws])
    imported = {line.split("|")[-1].strip() for line in traced.stderr.splitlines() if line.startswith("import time:")}
    assert "workbench.pipeline" in imported and not {"torch", "pandas", "papermill", "matplotlib"} & imported
    changed = cli(ws, "run", ROOT / "pipelines/reference/pipeline.yaml", "--profile", "cpu-small", "-p", "requests=10")
    assert [l.split()[1] for l in changed.stdout.splitlines() if l.startswith("✓")] == ["serve"]


def test_a_broken_step_fails_by_name_and_resume_completes(first, tmp_path):
    ws = first["ws"]
    spec = tmp_path / "reference"
    shutil.copytree(ROOT / "pipelines/reference", spec)
    nb = nbformat.read(spec / "serve.ipynb", as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('injected fault in serve')"))
    nbformat.write(nb, spec / "serve.ipynb")
    failed = cli(ws, "run", spec / "pipeline.yaml", "--profile", "cpu-small", "-p", "requests=8", check=False)
    assert failed.returncode == 1
    assert "step 'serve' failed in cell" in failed.stderr and "RuntimeError: injected fault in serve" in failed.stderr
    run_id = failed.stderr.split("workbench pipeline resume ")[1].split()[0]
    record = json.loads((ws / "pipelines/reference" / run_id / "run.json").read_text())
    assert record["steps"]["serve"]["status"] == "failed" and record["steps"]["retrain"]["status"] in ("cached", "ok")
    assert (ws / "pipelines/reference" / run_id / "serve.ipynb").is_file()     # the executed notebook is kept
    shutil.copy(ROOT / "pipelines/reference/serve.ipynb", spec / "serve.ipynb")  # the fix
    resumed = cli(ws, "resume", run_id)                     # (requests=8 never ran: serve must run, the rest is cached)
    assert "✓ serve" in resumed.stdout and resumed.stdout.count("↺") == 8 and "succeeded" in resumed.stdout
    listed = cli(ws, "list").stdout
    assert run_id in listed and "succeeded" in cli(ws, "show", run_id).stdout


@pytest.mark.parametrize("change, reason", [
    (lambda s: s["steps"]["ingest"].update(after=["retrain"]), "the steps form a cycle"),
    (lambda s: s["steps"]["clean"].update(notebook="missing.ipynb"), "does not exist"),
    (lambda s: s["steps"]["train"].setdefault("parameters", {}).update(learning_rate=0.1),
     "declares no parameter 'learning_rate'"),
    (lambda s: s["steps"]["serve"]["inputs"].update(model="register.weights"), "declares outputs ['model']"),
    (lambda s: s["steps"]["train"].setdefault("parameters", {}).update(epochs={1, 2}),
     "parameter 'epochs' of step 'train': set"),
    (lambda s: s["steps"]["serve"]["inputs"].update(model="register"), "input 'register' is neither 'step.output' nor"),
])
def test_bad_specs_are_refused_before_any_step_runs(first, tmp_path, change, reason):
    spec = yaml.safe_load((ROOT / "pipelines/reference/pipeline.yaml").read_text())
    change(spec)
    shutil.copytree(ROOT / "pipelines/reference", tmp_path / "p")
    (tmp_path / "p" / "pipeline.yaml").write_text(yaml.safe_dump(spec))
    refused = cli(tmp_path / "ws", "run", tmp_path / "p" / "pipeline.yaml", check=False)
    assert refused.returncode == 1 and reason in refused.stderr
    assert not (tmp_path / "ws" / "pipelines").exists() or not any((tmp_path / "ws" / "pipelines").rglob("*.ipynb"))


def test_a_step_notebook_runs_under_plain_papermill(tmp_path):
    "No runner needed: papermill alone executes a step with its parameters, and the step does its work."
    executed = tmp_path / "ingest.ipynb"
    run([BIN / "papermill", ROOT / "pipelines/reference/ingest.ipynb", executed, "-p", "rows", "300",
         "-p", "workspace", tmp_path / "ws", "--cwd", ROOT / "pipelines/reference"], timeout=300)
    assert "customers@" in executed.read_text()
    assert (tmp_path / "ws" / "data" / "datasets" / "customers" / "1.yaml").is_file()
