"""The driving case study end to end on its test profile: simulated frames, early- and late-fusion detectors, tracking,
the real-time stack in closed loop with faults injected, a safety report, the edge-cloud split, governed registry
versions, and the cloud half served by `workbench serve` to a vehicle that never sends a raw camera frame."""
import json
import os
from pathlib import Path

import httpx
import torch

from conftest import first_run, run_lesson, workbench_serve
from workbench.driving import EdgeClient, as_detections, held_out, npy_bytes, raw_camera_in
from workbench.models import load_model
from workbench.stores import Stores


def test_the_case_study_runs_and_its_safety_suite_passes(tmp_path):
    "The pipeline on its test profile, run by its lesson executed in batch (the lesson's exercises and checks too)."
    ws = tmp_path / "ws"
    run_lesson("15_driving.ipynb", ws, timeout=1200)
    record = first_run(ws, "driving")
    assert record["status"] == "succeeded", record
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
    edge = json.loads(Path(steps["edge_cloud"]["report"]).read_text())
    assert edge["raw_frames_kept"] == 1.0 and edge["designs"]["all in cloud"]["raw camera leaves"], edge
    assert steps["serve"]["uplink_bytes"] < edge["designs"]["all in cloud"]["bytes up per frame"] / 4
    assert abs(steps["serve"]["served_map"] - steps["edge_cloud"]["split_map"]) < 1e-6
    the_cloud_half_is_served_to_a_vehicle(ws, steps)


def the_cloud_half_is_served_to_a_vehicle(ws: Path, steps: dict):
    "`workbench serve` answers the vehicle's codes as the split model does in process; no body holds a camera frame."
    stores = Stores(ws)
    grids, _ = held_out(stores.data, steps["simulate"]["frames"], steps["simulate"]["truth"])
    grids = grids[:12]
    split, bodies = load_model(steps["edge_cloud"]["split_weights"]), []
    with workbench_serve("drive-perception-cloud@staging", ws / "registry" / "registry.db",
                         dict(os.environ, WORKBENCH_HOME=str(ws))) as (url, _), EdgeClient(split.vehicle, url) as car:
        car.http.event_hooks["request"].append(lambda request: bodies.append(request.content))
        served = [car(grid[None])[0] for grid in grids]
        raw = httpx.post(f"{url}/v1/models/drive-perception-cloud/predict.npy", content=npy_bytes(grids[:1].numpy()))
    assert raw.status_code == 422 and "expected shape (n, 8, 32, 16)" in raw.text, raw.text
    assert len(bodies) == len(grids) and not any(raw_camera_in(b, g) for b, g in zip(bodies, grids))
    assert any(raw_camera_in(npy_bytes(g[None].numpy()), g) for g in grids)          # the check can see a leak
    with torch.no_grad():
        in_process = as_detections(split.cloud(split.vehicle(grids)))
    position = lambda frames: [[(d["kind"], round(d["x"], 3), round(d["y"], 3)) for d in f] for f in frames]
    assert position(served) == position(in_process)
