"""The data layer on S3-compatible object storage: a real local S3 server (moto's server mode, `conftest.s3_server`)
reached over HTTP through fsspec/s3fs, as a team's bucket would be. The same data-layer code as on a local folder:
ingest, load, derive, lineage and fsck; new versions created race-free by S3's conditional writes, four writer
processes at once (without them, the same test sees versions overwritten)."""
import os
import subprocess
import sys
import textwrap

import pandas as pd

import workbench.clean  # noqa: F401  (registers the cleaning transformations)
from workbench.data import CorruptObject, DataStore
from workbench.sources import synthetic_text


def test_ingest_derive_lineage_and_fsck_on_s3(bucket):
    store = DataStore(f"{bucket}/data")
    messages = synthetic_text(60, seed=3)
    raw = store.ingest_table("tickets", messages, source="helpdesk export")
    pd.testing.assert_frame_equal(store.load("tickets"), messages)
    files = store.ingest_files("scans", {"a.bin": b"\x00\x01", "b.bin": b"\x02"}, source="a scanner")
    assert store.load(files.name).read("b.bin") == b"\x02"
    deduped = store.derive("tickets-dedup", "drop_near_duplicate_text", [raw.ref], {"column": "text", "threshold": 0.7})
    assert [step["ref"] for step in store.lineage(deduped.name)] == ["tickets-dedup@1", "tickets@1"]
    assert store.fsck() == {"corrupt": [], "missing": [], "bad_cards": [], "unreferenced": [], "staging": []}
    assert store.fs.exists(f"{bucket.removeprefix('s3://')}/data/datasets/tickets/1.yaml")    # in the bucket

    digest = raw.objects["table.parquet"]
    store.fs.pipe_file(store.objects.path(digest), b"tampered")         # someone edits an object in the bucket
    try:
        store.load("tickets")
        raise AssertionError("a tampered object was loaded")
    except CorruptObject as e:
        assert digest in str(e)
    assert store.fsck()["corrupt"] == [digest]


WRITER = '''
import sys
import pandas as pd
from workbench.data import DataError, DataStore
store, writer = DataStore(sys.argv[1]), int(sys.argv[2])
registered = []
for i in range(int(sys.argv[3])):
    for attempt in range(50):                 # a collision is refused, nothing overwritten: retry as the next version
        try:
            registered.append(store.ingest_table("shared", pd.DataFrame({"writer": [writer], "i": [i]}),
                                                 source=f"writer {writer}").version)
            break
        except DataError as e:
            assert "registered by another writer meanwhile" in str(e), e
    else:
        raise SystemExit(f"writer {writer}: 50 collisions in a row")
print(" ".join(map(str, registered)))
'''


def test_four_writers_create_versions_race_free_on_s3(bucket):
    url, per_writer = f"{bucket}/data", 8
    writers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), url, str(w), str(per_writer)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "WORKBENCH_PROGRESS": "0"}) for w in range(4)]
    versions = []
    for w in writers:
        out, err = w.communicate(timeout=180)
        assert w.returncode == 0, err[-3000:]
        versions += map(int, out.split())
    assert sorted(versions) == list(range(1, 4 * per_writer + 1)), "each write got its own version"
    store = DataStore(url)
    rows = {(int(store.load("shared", v).writer[0]), int(store.load("shared", v).i[0])) for v in versions}
    assert rows == {(w, i) for w in range(4) for i in range(per_writer)}, "no version overwrote another"


def test_the_feature_store_reads_its_offline_tables_from_s3(bucket, tmp_path):
    "Offline tables (Parquet objects) in the bucket, read by DuckDB through fsspec; the online store stays local."
    from workbench.features import Entity, Feature, FeatureStore, FeatureView
    base = pd.Timestamp("2026-01-01", tz="UTC")
    events = pd.DataFrame({"key": [1, 1, 2], "ts": [base, base + pd.Timedelta(hours=2), base],
                           "value": [1.0, 2.0, 5.0]})
    for where in ("local", "s3"):
        data = DataStore(f"{bucket}/data" if where == "s3" else tmp_path / where / "data")
        store = FeatureStore(data, tmp_path / where / "features")
        store.apply(FeatureView(name="v", entity=Entity(name="key", join_key="key"), timestamp="ts",
                                features=[Feature(name="value", type="float")], ttl_seconds=86400,
                                source=data.ingest_table("events", events, source="a test").ref))
        entities = pd.DataFrame({"key": [1, 1, 2], "event_timestamp": [base + pd.Timedelta(hours=1),
                                                                        base + pd.Timedelta(hours=3), base]})
        got = store.get_historical_features(entities, ["v:value"])
        assert list(got["value"]) == [1.0, 2.0, 5.0], where
        assert store.materialize("v", base, base + pd.Timedelta(days=1)) == 2
        assert store.parquet("v").startswith("s3://" if where == "s3" else "/")
