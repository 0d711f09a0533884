"""Data-drift report on 1M reference rows vs 1M current rows x 50 columns (40 numeric, 10 categorical), 10 of them
drifted by known amounts, vs a plain per-column SciPy loop (ks_2samp / chi2_contingency) in the same run.

Ours: `DriftReference(reference).compare(current)`, timed with the reference preparation included (the first report)
and without it (every later report against the same reference). Both report a test and an effect size per column.
Hits and misses against the known truth are printed for: ours "drifted" (significant after Benjamini-Hochberg AND
effect >= 0.1), ours "significant" alone, and the SciPy loop's unadjusted p < 0.05.
Evidently (issue 10's peer) runs only when EVIDENTLY_PYTHON names a Python with evidently installed (a throwaway venv:
it needs pandas < 3, ours pins 3.1): its DataDriftPreset on the same data, as a subprocess, reported as a third row.
Size: BENCH_MONITOR_ROWS (default 1,000,000) rows per window.
"""
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from workbench.monitor import DriftReference

ROWS = int(os.environ.get("BENCH_MONITOR_ROWS", 1_000_000))
CATEGORIES = list("abcdefgh")

# the known truth: column -> what was done to it in the current window
NUMERIC_DRIFT = {"n0": ("mean", 0.02), "n1": ("mean", 0.05), "n2": ("mean", 0.2), "n3": ("mean", 1.0),
                 "n4": ("scale", 1.1), "n5": ("scale", 1.5), "n6": ("mean", 0.5)}
CATEGORICAL_DRIFT = {"c0": 0.005, "c1": 0.02, "c2": 0.1}    # share of all mass moved from category "a" (0.125) to "h"

EVIDENTLY = r'''
import sys, time, json
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
start = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
seconds = time.perf_counter() - start
columns = {}
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config["type"].endswith("ValueDrift"):
        distance = "distance" in config["method"].lower()       # distances drift above the threshold, p-values below
        value, threshold = metric["value"], config["threshold"]
        columns[config["column"]] = {"method": config["method"], "value": value,
                                     "drifted": bool(value >= threshold if distance else value < threshold)}
print(json.dumps({"seconds": seconds, "columns": columns}))
'''


def windows(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    means, scales = rng.normal(0, 10, 40), rng.uniform(0.5, 5, 40)
    probs = np.full(len(CATEGORIES), 1 / len(CATEGORIES))

    def frame(drifted: bool) -> pd.DataFrame:
        data = {}
        for i in range(40):
            kind, size = NUMERIC_DRIFT.get(f"n{i}", (None, 0)) if drifted else (None, 0)
            mean = means[i] + (size * scales[i] if kind == "mean" else 0)
            scale = scales[i] * (size if kind == "scale" else 1)
            data[f"n{i}"] = rng.normal(mean, scale, rows)
        for i in range(10):
            p = probs.copy()
            moved = CATEGORICAL_DRIFT.get(f"c{i}", 0) if drifted else 0
            p[0], p[-1] = p[0] - moved, p[-1] + moved
            data[f"c{i}"] = pd.Categorical.from_codes(rng.choice(len(CATEGORIES), rows, p=p), CATEGORIES)
        return pd.DataFrame(data)

    return frame(False), frame(True)


def scipy_loop(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    "The plain baseline: one SciPy test per column, p-values unadjusted."
    p = {}
    for column in reference.columns:
        if column.startswith("n"):
            p[column] = stats.ks_2samp(reference[column], current[column]).pvalue
        else:
            table = pd.concat([reference[column].value_counts(), current[column].value_counts()], axis=1).fillna(0)
            p[column] = stats.chi2_contingency(table.to_numpy().T)[1]
    return p


def score(flagged: set[str], truth: set[str]) -> str:
    return f"{len(flagged & truth)}/{len(truth)} hits, {len(flagged - truth)} false alarms"


def run() -> list[dict]:
    reference, current = windows(ROWS)
    truth = set(NUMERIC_DRIFT) | set(CATEGORICAL_DRIFT)

    start = time.perf_counter()
    prepared = DriftReference(reference)
    report = prepared.compare(current)
    first = time.perf_counter() - start
    start = time.perf_counter()
    prepared.compare(current)
    later = time.perf_counter() - start

    start = time.perf_counter()
    p = scipy_loop(reference, current)
    baseline = time.perf_counter() - start

    table = report.table.set_index("column")
    print(f"\nbench_monitor: {ROWS:,} + {ROWS:,} rows x 50 columns; truth: {len(truth)} drifted columns")
    print(f"  ours, drifted (BH-significant and effect >= 0.1): {score(set(table.index[table.drifted]), truth)}")
    print(f"  ours, significant only (BH, alpha 0.05):          {score(set(table.index[table.significant]), truth)}")
    print(f"  scipy loop, unadjusted p < 0.05:                  {score({c for c, v in p.items() if v < 0.05}, truth)}")
    columns = ["test", "p_adjusted", "effect", "effect_size", "psi", "drifted"]
    rows_in_order = sorted(truth, key=lambda c: (c[0], int(c[1:])))
    print(table.loc[rows_in_order, columns].to_string(float_format=lambda v: f"{v:.3g}"))
    rows = [{"name": f"drift report, {ROWS // 1000}k x 50 (incl. reference prep)", "ours": first, "baseline": baseline,
             "baseline_name": "scipy ks_2samp/chi2 loop"},
            {"name": f"drift report, {ROWS // 1000}k x 50 (reference prepared)", "ours": later, "baseline": baseline,
             "baseline_name": "scipy ks_2samp/chi2 loop"}]
    if os.environ.get("EVIDENTLY_PYTHON"):
        rows.append(evidently_row(reference, current, first))
    return rows


def evidently_row(reference: pd.DataFrame, current: pd.DataFrame, ours: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / "reference.parquet", Path(tmp) / "current.parquet"]
        reference.to_parquet(paths[0])
        current.to_parquet(paths[1])
        done = subprocess.run([os.environ["EVIDENTLY_PYTHON"], "-c", EVIDENTLY, *map(str, paths)], capture_output=True,
                              text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"evidently failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    truth = set(NUMERIC_DRIFT) | set(CATEGORICAL_DRIFT)
    flagged = {c for c, r in result["columns"].items() if r["drifted"]}
    methods = sorted({r["method"] for r in result["columns"].values()})
    print(f"  evidently DataDriftPreset ({', '.join(methods)}): {score(flagged, truth)}")
    return {"name": f"drift report, {len(reference) // 1000}k x 50 (incl. reference prep)", "ours": ours,
            "baseline": result["seconds"], "baseline_name": "evidently DataDriftPreset"}
