"""What moving to a server or a cluster costs on one machine, the same code in both columns:

- a model registration (weights written, version row, transition row) on PostgreSQL (a real server on loopback,
  started here) against SQLite in the workspace, per registration;
- a pipeline step (a chain of empty steps) run as a Ray task on a local Ray cluster against the local runner's warm
  kernels, per step; and the cluster's own start-up (once per process) counted in local steps;
- a dataset version written and read back on S3-compatible object storage (a local moto server over HTTP) against a
  local folder, per ingest + load.
"""
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from servers import postgres_server, s3_server  # noqa: E402

from bench_pipeline import STEPS, chain  # noqa: E402

REGISTRATIONS, TABLES = 30, 20


def per_registration(url: str, root: Path) -> float:
    from workbench.models import MLP, MLPConfig
    from workbench.registry import Registry
    registry, model = Registry(url, root), MLP(MLPConfig(in_features=16, hidden=[32], out_features=2))
    registry.register("warm-up", model, {"shape": [None, 16]}, {"shape": [None, 2]})
    start = time.perf_counter()
    for _ in range(REGISTRATIONS):
        registry.register("m", model, {"shape": [None, 16]}, {"shape": [None, 2]})
    return (time.perf_counter() - start) / REGISTRATIONS


def per_step(spec: Path, workspace: Path, **executor) -> float:
    from workbench.pipeline import run_pipeline
    record = run_pipeline(spec, workspace=workspace, **executor)
    return sum(s["seconds"] for s in record["steps"].values()) / STEPS


def per_table(url: str) -> float:
    from workbench.data import DataStore
    store, frame = DataStore(url), pd.DataFrame({"x": range(1000), "y": [str(i) for i in range(1000)]})
    start = time.perf_counter()
    for i in range(TABLES):
        store.ingest_table("t", frame.assign(i=i), source="a benchmark")
        store.load("t")
    return (time.perf_counter() - start) / TABLES


def run() -> list[dict]:
    import os

    import fsspec

    from workbench.core import connect_ray
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with postgres_server() as fresh:
            rows.append({"name": "registration, PostgreSQL vs SQLite", "ours": per_registration(fresh(), tmp / "pg"),
                         "baseline": per_registration(str(tmp / "registry.db"), tmp / "sqlite"),
                         "baseline_name": "SQLite file"})
        spec = chain(tmp, "empty", "x = i + 1")
        local = per_step(spec, tmp / "local")
        start = time.perf_counter()
        connect_ray(None)                                   # a private local cluster: its start-up, once
        started = time.perf_counter() - start
        rows.append({"name": "pipeline step, Ray task vs local kernel", "ours": per_step(spec, tmp / "ray",
                                                                                       executor="ray"),
                     "baseline": local, "baseline_name": "warm local kernels"})
        rows.append({"name": "Ray cluster start (once per process) vs one local step", "ours": started,
                     "baseline": local, "baseline_name": "one local step"})
        with s3_server() as env:
            os.environ.update(env)
            fsspec.filesystem("s3", skip_instance_cache=True).mkdir("bench")
            rows.append({"name": "ingest + load a 1000-row table, S3 vs local", "ours": per_table("s3://bench/data"),
                         "baseline": per_table(str(tmp / "data")), "baseline_name": "local folder"})
    return rows
