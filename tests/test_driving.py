"""The driving case study end to end on its test profile: simulated frames, early- and late-fusion detectors, tracking,
the real-time stack in closed loop with faults injected, a safety report, and a governed registry version."""
import json
from pathlib import Path

from conftest import BIN, ROOT, run


def test_the_case_study_runs_and_its_safety_suite_passes(tmp_path):
    ws = tmp_path / "ws"
    out = run([BIN / "workbench", "pipeline", "run", ROOT / "case_studies/driving/pipeline.yaml", "--profile", "test",
               "--workspace", ws], timeout=1200).stdout
    assert "succeeded" in out, out
    record = json.loads(next((ws / "pipelines" / "driving").glob("*/run.json")).read_text())
    steps = {name: step["outputs"] for name, step in record["steps"].items()}
    perception = json.loads(Path(steps["evaluate"]["report"]).read_text())
    early = perception["detection"]["early fusion"]
    assert early["all sensors"] > max(early[f"{s} alone"] for s in ("camera", "lidar", "radar")), early
    assert all(early[f"without {s}"] > 0.3 for s in ("camera", "lidar", "radar")), early      # graceful, not gone
    assert steps["evaluate"]["mota"] > 0.5, steps["evaluate"]
    loop = steps["closed_loop"]
    assert (loop["nominal_pass_rate"], loop["sensor_loss_pass_rate"], loop["stop_rate"]) == (1.0, 1.0, 1.0), loop
    safety = json.loads(Path(loop["report"]).read_text())
    assert {row["scenario"] for row in safety["scenarios"] if row["stop"]} >= {"all perception lost"}
    assert set(safety["stages"]["p99_ms"]) == {"fuse", "detect", "track", "plan"}
    assert steps["register"]["stage"] == "staging", steps["register"]
    executed = (ws / "pipelines" / "driving" / record["run_id"] / "closed_loop.ipynb").read_text()
    assert '"image/png"' in executed and "frame p99 within 50 ms" in executed
