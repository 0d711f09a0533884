"""The medical-imaging case study end to end on its test profile: DICOM in, de-identified at the door, a CNN trained on
patients split apart, validation printed against its floors; and not one planted identity anywhere in the workspace."""
import json
from pathlib import Path

from conftest import BIN, ROOT, run
from workbench.dicom import identifiers, synthetic_cohort
from workbench.stores import Stores


def test_the_case_study_runs_and_no_identity_leaves_ingest(tmp_path):
    ws = tmp_path / "ws"
    out = run([BIN / "workbench", "pipeline", "run", ROOT / "case_studies/medical_imaging/pipeline.yaml",
               "--profile", "test", "--workspace", ws], timeout=900).stdout
    assert "succeeded" in out, out
    record = json.loads(next((ws / "pipelines" / "medical-imaging").glob("*/run.json")).read_text())
    evaluation = record["steps"]["evaluate"]["outputs"]
    assert evaluation["auc_test"] > 0.8 and evaluation["auc_external"] > 0.75, evaluation
    watched = record["steps"]["monitor"]["outputs"]
    assert watched["drift_new_scanner"] and not watched["drift_known"] and watched["open_reviews"] == 1, watched
    explained = record["steps"]["explain"]["outputs"]
    assert explained["pointing_game"] >= 0.8 and explained["explained"], explained
    model = record["steps"]["register"]["outputs"]["model"]
    governance = Stores(ws).governance
    name, version = model.split("@")
    assert {"validation", "explanation"} <= {kind for kind in ("validation", "explanation")
                                             if governance.attachments(name, int(version), kind)}
    printed = (ws / "pipelines" / "medical-imaging" / record["run_id"] / "evaluate.ipynb").read_text()
    assert "AUC, held-out patients" in printed and "floor >= 0.9" in printed

    cohort = synthetic_cohort(120, seed=0, size=32)                 # the test profile's cohort, regenerated
    planted = set().union(*(identifiers(ds) for ds, _ in cohort)) | {str(ds.PatientName).split("^")[0] for ds, _ in cohort}
    # birth dates are checked per file in the dicom chapter; here, among 120 patients, a shifted date of one patient
    # can equal another's real birth date by chance, so the workspace-wide scan looks for the high-entropy identifiers
    planted = {secret for secret in planted if not (len(secret) == 8 and secret.isdigit())}
    files = [p for p in ws.rglob("*") if p.is_file()]
    leaks = [(str(p.relative_to(ws)), secret) for p in files for secret in planted if secret.encode() in p.read_bytes()]
    assert len(files) > 50 and not leaks, leaks[:10]


def test_a_rerun_with_the_same_seed_reproduces_every_number(tmp_path):
    "Two fresh workspaces, the same seed: the same data hashes, the same AUCs, intervals, calibration and pointing game."
    outputs = []
    for ws in (tmp_path / "a", tmp_path / "b"):
        run([BIN / "workbench", "pipeline", "run", ROOT / "case_studies/medical_imaging/pipeline.yaml",
             "--profile", "test", "--workspace", ws], timeout=900)
        record = json.loads(next((ws / "pipelines" / "medical-imaging").glob("*/run.json")).read_text())
        report = json.loads(Path(record["steps"]["evaluate"]["outputs"]["report"]).read_text())
        inputs = Stores(ws).data.card(record["steps"]["preprocess"]["outputs"]["dataset"])
        outputs.append((inputs.objects, record["steps"]["explain"]["outputs"]["pointing_game"], report))
    assert outputs[0] == outputs[1]
