"""Feature store speed: the point-in-time join vs a bare DuckDB ASOF query on the same Parquet file, and online
reads (10 features of 1 entity; a batch of 1,000 entities) vs a bare sqlite3 point query, in one run.

Shape (issue 4): 1M label rows x 1M feature rows, 10 float features, 100k entities, TTL 7 days, Parquet on disk.
WORKBENCH_BENCH_FEATURE_ROWS scales both row counts (default 1,000,000). When WORKBENCH_FEAST_PYTHON names a Python
with Feast installed (a separate throwaway venv: `python -m venv /tmp/feast && /tmp/feast/bin/pip install feast`),
the same data also goes through Feast's local offline store and SQLite online store (feast_peer.py).
"""
import json
import subprocess
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from workbench.data import DataStore
from workbench.features import Entity, Feature, FeatureStore, FeatureView

FEATURES = [f"f{i}" for i in range(10)]


def make_data(rows: int, entities: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    feats = pd.DataFrame({"entity": rng.integers(0, entities, rows),
                          "ts": start + pd.to_timedelta(rng.integers(0, 90 * 86400, rows), unit="s")})
    for name in FEATURES:
        feats[name] = rng.random(rows)
    labels = pd.DataFrame({"entity": rng.integers(0, entities, rows),
                           "event_timestamp": start + pd.to_timedelta(rng.integers(0, 90 * 86400, rows), unit="s"),
                           "label": rng.integers(0, 2, rows)})
    return feats, labels


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bare_duckdb(parquet: str, labels: pd.DataFrame, ttl: int) -> pd.DataFrame:
    "The same join written directly: the physical baseline for our wrapper."
    cols = ", ".join(f"CASE WHEN f.ts >= e.event_timestamp - INTERVAL ({ttl}) SECOND THEN "
                     f"f.{c} END AS {c}" for c in FEATURES)
    with duckdb.connect() as con:
        con.register("labels", labels)
        return con.sql(f"SELECT e.*, {cols} FROM labels e ASOF LEFT JOIN read_parquet('{parquet}') f "
                       "ON e.entity = f.entity AND e.event_timestamp >= f.ts").df()


def feast_peer(feats: pd.DataFrame, labels: pd.DataFrame, work: Path) -> dict | None:
    "Feast's numbers on the same data, from a separate Python; None when WORKBENCH_FEAST_PYTHON is unset."
    python = os.environ.get("WORKBENCH_FEAST_PYTHON")
    if not python:
        return None
    (work / "feast").mkdir()
    feats.to_parquet(work / "feast" / "features.parquet")
    labels.to_parquet(work / "feast" / "labels.parquet")
    out = subprocess.run([python, str(Path(__file__).with_name("feast_peer.py")),
                          str(work / "feast" / "features.parquet"),
                          str(work / "feast" / "labels.parquet"), str(work / "feast")],
                         capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def percentile_us(samples, q) -> float:
    return float(np.percentile(samples, q) * 1e6)


def run() -> list[dict]:
    rows = int(os.environ.get("WORKBENCH_BENCH_FEATURE_ROWS", "1000000"))
    entities, ttl = max(1, rows // 10), 7 * 86400
    feats, labels = make_data(rows, entities)
    with tempfile.TemporaryDirectory(dir=os.environ.get("WORKBENCH_BENCH_DIR")) as d:
        data = DataStore(Path(d) / "data")
        source = data.ingest_table("bench-features", feats, source="bench")
        store = FeatureStore(data, Path(d) / "features")
        store.apply(FeatureView(name="bench", entity=Entity(name="entity", join_key="entity"), timestamp="ts",
                                ttl_seconds=ttl, source=source.ref,
                                features=[Feature(name=f, type="float") for f in FEATURES]))
        parquet = store.parquet("bench")
        requests = [f"bench:{f}" for f in FEATURES]
        ours = best_of(lambda: store.get_historical_features(labels, requests))
        bare = best_of(lambda: bare_duckdb(parquet, labels, ttl))
        result = store.get_historical_features(labels, requests)
        null_share = float(result["f0"].isna().mean())

        store.materialize("bench", pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-04-01", tz="UTC"))
        keys = np.random.default_rng(1).integers(0, entities, 10_000).tolist()
        store.get_online_features("bench", [keys[0]])  # warm the statement and view caches
        ours_reads = []
        for key in keys:
            t = time.perf_counter()
            store.get_online_features("bench", [key])
            ours_reads.append(time.perf_counter() - t)
        con = sqlite3.connect(store.root / "online.sqlite")
        sql = f'SELECT key, ts, {", ".join(FEATURES)} FROM "bench__v1" WHERE key = ?'
        raw_reads = []
        for key in keys:
            t = time.perf_counter()
            con.execute(sql, (key,)).fetchone()
            raw_reads.append(time.perf_counter() - t)
        peer = feast_peer(feats, labels, Path(d))
        batch = keys[:1000]
        ours_batch = best_of(lambda: store.get_online_features("bench", batch), 10)
        raw_batch = best_of(lambda: con.execute(
            f'SELECT key, ts, {", ".join(FEATURES)} FROM "bench__v1" WHERE key IN ({",".join("?" * 1000)})',
            batch).fetchall(), 10)
    vs_feast = []
    if peer:
        vs_feast = [
            {"name": f"point-in-time join {rows:,} x {rows:,}", "ours": ours, "baseline": peer["join_seconds"],
             "baseline_name": "Feast local", "unit": "s", "feast_rows_returned": peer["rows_returned"],
             "label_rows": peer["label_rows"]},
            {"name": "online read 1 entity x 10 features, p99", "ours": percentile_us(ours_reads, 99),
             "baseline": peer["online_p99_us"], "baseline_name": "Feast SQLite", "unit": "us"},
        ]
    return vs_feast + [
        {"name": f"point-in-time join {rows:,} x {rows:,}", "ours": ours, "baseline": bare,
         "baseline_name": "bare DuckDB ASOF",
         "unit": "s", "label_rows_returned": len(result), "rows_with_null_features": null_share},
        {"name": "online read 1 entity x 10 features, p50", "ours": percentile_us(ours_reads, 50),
         "baseline": percentile_us(raw_reads, 50), "baseline_name": "bare sqlite3", "unit": "us"},
        {"name": "online read 1 entity x 10 features, p99", "ours": percentile_us(ours_reads, 99),
         "baseline": percentile_us(raw_reads, 99), "baseline_name": "bare sqlite3", "unit": "us"},
        {"name": "online read 1,000 entities, one call", "ours": ours_batch * 1e3, "baseline": raw_batch * 1e3,
         "baseline_name": "bare sqlite3", "unit": "ms"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
