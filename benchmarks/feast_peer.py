"""The peer for bench_features: the same point-in-time join and online reads with Feast's local stores.

Run by bench_features.py under a separate Python that has Feast (WORKBENCH_FEAST_PYTHON), never under the
workbench environment. Usage: python feast_peer.py FEATURES.parquet LABELS.parquet WORKDIR -> one JSON line.
"""
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
from feast.repo_config import RepoConfig
from feast.types import Float64


def main(features_path: str, labels_path: str, workdir: str) -> dict:
    work = Path(workdir)
    names = [c for c in pd.read_parquet(features_path).columns if c.startswith("f")]
    labels = pd.read_parquet(labels_path)
    config = RepoConfig(project="bench", registry=str(work / "registry.db"), provider="local",
                        online_store=SqliteOnlineStoreConfig(path=str(work / "online.db")),
                        entity_key_serialization_version=3)
    store = FeatureStore(config=config)
    entity = Entity(name="entity", join_keys=["entity"])
    view = FeatureView(name="bench", entities=[entity], ttl=timedelta(days=7),
                       schema=[Field(name=n, dtype=Float64) for n in names],
                       source=FileSource(path=features_path, timestamp_field="ts"))
    store.apply([entity, view])
    requests = [f"bench:{n}" for n in names]
    start = time.perf_counter()
    result = store.get_historical_features(entity_df=labels, features=requests).to_df()
    join_seconds = time.perf_counter() - start
    store.materialize(pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime(),
                      pd.Timestamp("2026-04-01", tz="UTC").to_pydatetime())
    keys = np.random.default_rng(1).integers(0, int(labels.entity.max()) + 1, 2000).tolist()
    reads = []
    for key in keys:
        t = time.perf_counter()
        store.get_online_features(features=requests, entity_rows=[{"entity": key}]).to_dict()
        reads.append(time.perf_counter() - t)
    return {"join_seconds": join_seconds, "rows_returned": len(result), "label_rows": len(labels),
            "online_p50_us": float(np.percentile(reads, 50) * 1e6),
            "online_p99_us": float(np.percentile(reads, 99) * 1e6)}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
