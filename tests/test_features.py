"""Feature store correctness: the point-in-time join against a brute-force reference (hypothesis), and the
online store under concurrent materialization and reads (SQLite WAL)."""
import datetime as dt
import tempfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.data import DataStore
from workbench.features import Entity, Feature, FeatureStore, FeatureView

BASE = pd.Timestamp("2026-01-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)


def reference(events: pd.DataFrame, entities: pd.DataFrame, ttl: pd.Timedelta) -> list:
    "For each entity row: the value of the latest event at or before its time (ties: the last one listed), within ttl."
    out = []
    for key, at in zip(entities.key, entities.event_timestamp):
        best = None
        for i, (k, t) in enumerate(zip(events.key, events.ts)):
            if k == key and t <= at and (best is None or t >= events.ts[best]):
                best = i
        out.append(events.value[best] if best is not None and at - events.ts[best] <= ttl else None)
    return out


stream = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 48), st.floats(-1e6, 1e6, allow_nan=False)),
                  min_size=1, max_size=40)
queries = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 60)), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=stream, rows=queries, ttl_hours=st.integers(0, 30))
def test_point_in_time_join_matches_brute_force(events, rows, ttl_hours):
    events = pd.DataFrame(events, columns=["key", "hour", "value"])
    events["ts"] = BASE + events.hour * HOUR                  # few distinct hours: ties are common
    entities = pd.DataFrame(rows, columns=["key", "hour"])
    entities["event_timestamp"] = BASE + entities.hour * HOUR
    with tempfile.TemporaryDirectory() as d:
        data = DataStore(Path(d) / "data")
        source = data.ingest_table("events", events[["key", "ts", "value"]], source="hypothesis")
        store = FeatureStore(data, Path(d) / "features")
        store.apply(FeatureView(name="v", entity=Entity(name="key", join_key="key"), timestamp="ts",
                                features=[Feature(name="value", type="float")],
                                ttl_seconds=ttl_hours * 3600, source=source.ref))
        got = store.get_historical_features(entities[["key", "event_timestamp"]], ["v:value"])
    expected = reference(events, entities, pd.Timedelta(hours=ttl_hours))
    assert len(got) == len(entities)
    assert [None if pd.isna(v) else v for v in got["value"]] == expected


def test_concurrent_materialize_and_reads_do_not_corrupt_the_online_store(tmp_path):
    n_keys, days = 200, 30
    rng = np.random.default_rng(0)
    events = pd.DataFrame({"key": np.repeat(np.arange(n_keys), days),
                           "ts": np.tile(pd.date_range("2026-01-01", periods=days, freq="D", tz="UTC"), n_keys)})
    events["value"] = events.key * 1000.0 + events.ts.dt.day   # each value says which key and day it is
    data = DataStore(tmp_path / "data")
    source = data.ingest_table("events", events, source="test")
    store = FeatureStore(data, tmp_path / "features")
    store.apply(FeatureView(name="v", entity=Entity(name="key", join_key="key"), timestamp="ts",
                            features=[Feature(name="value", type="float")],
                            ttl_seconds=86400 * 365, source=source.ref))
    errors, seen = [], []

    def writer():
        try:
            for day in range(1, days + 1):   # one materialization per day, as a scheduler would
                store.materialize_incremental("v", dt.datetime(2026, 1, 1) + dt.timedelta(days=day))
        except Exception as e:               # pragma: no cover - reported below
            errors.append(e)

    def reader():
        reader_store = FeatureStore(data, tmp_path / "features")
        try:
            for _ in range(300):
                keys = rng.integers(0, n_keys, 20).tolist()
                rows = reader_store.get_online_features("v", keys)
                seen.append([(k, row["value"], row["ts"]) for k, row in zip(keys, rows)])
        except Exception as e:               # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for batch in seen:
        for key, value, ts in batch:
            if value is not None:            # a row is either absent yet or whole and consistent
                assert int(value // 1000) == key and int(round(value % 1000)) == pd.Timestamp(ts).day
    final = store.get_online_features("v", list(range(n_keys)))
    assert [row["value"] for row in final] == [k * 1000.0 + days for k in range(n_keys)]
