"""Monitoring a real `workbench serve` process: Prometheus metrics match the traffic sent, the prediction audit log
joined with late labels gives the quality a direct computation gives, and the inputs the server captured show the
drift that was injected into the second half of the traffic (and only there)."""
import os
import subprocess
import sys

import httpx
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import workbench_serve
from workbench.governance import Governance
from workbench.monitor import DriftReference, histogram_quantile, join_labels, predictions_frame, quality, scrape
from workbench.registry import Registry
from workbench.stream import EventLog

SETUP = '''
import sys, torch
from workbench.governance import Governance
from workbench.models import MLP, MLPConfig
from workbench.registry import Registry
gov = Governance(Registry(sys.argv[1]))
admin = gov.bootstrap("root")
print(gov.add_user(admin, "ana", ["data-scientist"]))
torch.manual_seed(0)
v = gov.registry.register("scorer", MLP(MLPConfig(in_features=3, hidden=[8], out_features=2)), {"shape": [None, 3]},
                          {"shape": [None, 2]})
'''

REQUESTS, ROWS = 120, 5


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("monitor")
    env = {**os.environ, "WORKBENCH_HOME": str(tmp / "ws"), "WORKBENCH_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    registry = tmp / "registry.db"
    key = subprocess.run([sys.executable, "-c", SETUP, str(registry)], check=True, env=env, timeout=120,
                         capture_output=True, text=True).stdout.strip()
    rng = np.random.default_rng(0)
    batches = [rng.normal(0, 1, (ROWS, 3)) + [0, 0, 1.5 * (i >= REQUESTS // 2)] for i in range(REQUESTS)]   # x2 shifts
    with workbench_serve("scorer@1", registry, env, "--capture", str(tmp / "captured.jsonl")) as (url, _), \
            httpx.Client(base_url=url, timeout=30) as client:
        replies = [client.post("/v1/models/scorer/predict", json={"inputs": b.tolist()}).raise_for_status().json()
                   for b in batches]
        client.post("/v1/models/scorer/predict", json={"inputs": [[1, 2]]})          # one invalid request
        metrics = scrape(f"{url}/metrics")
    return {"tmp": tmp, "registry": registry, "key": key, "batches": batches, "replies": replies, "metrics": metrics}


def test_prometheus_metrics_count_the_traffic(served):
    m = served["metrics"]
    requests = m[m["sample"] == "workbench_requests_total"].set_index("outcome")["value"]
    assert requests["ok"] == REQUESTS and requests["invalid"] == 1
    rows = m[m["sample"] == "workbench_batch_size_sum"]["value"].sum()
    assert rows == REQUESTS * ROWS                                  # every row reached the model once (no repeats)
    p50 = histogram_quantile(m, "workbench_request_latency_seconds", 0.5)
    assert 0 < p50 < 1.0


def test_quality_from_the_audit_log_and_late_labels(served):
    gov = Governance(Registry(served["registry"]))
    frame = predictions_frame(gov.read_predictions(served["key"], "scorer"))
    assert len(frame) == REQUESTS * ROWS
    # labels arrive for the first 80 requests only (the rest are "late"): the label is a known rule of the inputs
    truth = {f"{r['request_id']}:{i}": int(row[0] + row[1] > 0)
             for r, b in zip(served["replies"][:80], served["batches"][:80]) for i, row in enumerate(b)}
    joined = join_labels(frame, [{"id": i, "label": y} for i, y in truth.items()])
    assert len(joined) == 80 * ROWS
    direct_probs = torch.softmax(torch.tensor([o for r in served["replies"][:80] for o in r["outputs"]]), -1).numpy()
    direct = quality(direct_probs, np.array(list(truth.values())))
    ours = quality(np.stack(joined.set_index("id").loc[list(truth), "probs"].to_numpy()),
                   np.array(list(truth.values())))
    assert ours == pytest.approx(direct)


def test_captured_inputs_show_the_injected_drift(served):
    events, _ = EventLog(served["tmp"] / "captured.jsonl").read(0, 10**6)
    assert len(events) == REQUESTS * ROWS
    assert {e["id"].split(":")[0] for e in events} == {r["request_id"] for r in served["replies"]}
    inputs = pd.DataFrame([e["inputs"] for e in events], columns=["x0", "x1", "x2"])
    half = len(inputs) // 2
    report = DriftReference(inputs.iloc[:half]).compare(inputs.iloc[half:])
    assert dict(zip(report.table.column, report.table.drifted)) == {"x0": False, "x1": False, "x2": True}
