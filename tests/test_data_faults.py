"""Data layer under faults: a writer killed with SIGKILL mid-ingest, a flipped byte on disk, concurrent ingests.

After a kill there must be no partial object and no dangling card; the next ingest succeeds and fsck is clean
(objects the killed writer finished but never referenced are reported as unreferenced, which is harmless)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from workbench.data import CorruptObject, DataStore

WRITER = """
import sys
from pathlib import Path
from workbench.data import DataStore
DataStore(sys.argv[1]).ingest_files("scans", Path(sys.argv[2]))
"""


def make_files(folder: Path, n: int, size: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"scan-{i:03d}.bin").write_bytes(i.to_bytes(4, "little") + os.urandom(size))
    return folder


def test_sigkill_mid_ingest_leaves_no_partial_object_or_card(tmp_path):
    files = make_files(tmp_path / "scans", n=200, size=2 << 20)
    root = tmp_path / "store"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(files)], env={**os.environ, "WORKBENCH_PROGRESS": "0"})
    objects = root / "objects"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.is_file() for p in objects.rglob("*")):   # a stored object, not just its folder
        time.sleep(0.01)
    writer.send_signal(signal.SIGKILL)
    assert writer.wait() == -signal.SIGKILL
    store = DataStore(root)
    stored = store.objects.digests()
    assert 0 < len(stored) < 200, f"the kill should land mid-ingest; {len(stored)} objects stored"
    report = store.fsck()
    assert report["corrupt"] == [] and report["missing"] == [] and report["bad_cards"] == []
    assert store.datasets() == []                       # no card for the interrupted version
    card = store.ingest_files("scans", files)           # the next ingest succeeds and reuses what was stored
    assert card.rows == 200
    report = store.fsck()
    assert report == {"corrupt": [], "missing": [], "bad_cards": [], "unreferenced": []}
    assert store.load("scans").read("scan-007.bin") == (files / "scan-007.bin").read_bytes()


def test_flipped_byte_is_detected_on_read_and_by_fsck(tmp_path):
    store = DataStore(tmp_path / "store")
    card = store.ingest_table("t", pd.DataFrame({"x": range(1000)}), source="test")
    digest = card.objects["table.parquet"]
    path = Path(store.objects.path(digest))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    try:
        store.load("t")
    except CorruptObject as e:
        assert digest in str(e)
    else:
        raise AssertionError("a corrupt object was read without an error")
    assert store.fsck()["corrupt"] == [digest]


def test_identical_content_from_two_ingests_is_one_object(tmp_path):
    files = make_files(tmp_path / "scans", n=5, size=1000)
    store = DataStore(tmp_path / "store")
    first = store.ingest_files("a", files)
    second = store.ingest_files("b", files)
    assert first.objects == second.objects
    assert len(store.objects.digests()) == 5


def test_concurrent_writers_never_overwrite_a_version(tmp_path):
    "Threads racing to register versions of one dataset: each either lands as its own version or is told to retry."
    from concurrent.futures import ThreadPoolExecutor

    from workbench.data import DataError

    store = DataStore(tmp_path / "store")

    def register(i):
        try:
            return store.ingest_table("shared", pd.DataFrame({"writer": [i]}), source=f"writer {i}").version
        except DataError as e:
            assert "nothing was overwritten" in str(e)
            return None

    with ThreadPoolExecutor(8) as pool:
        landed = [v for v in pool.map(register, range(16)) if v is not None]
    assert len(landed) == len(set(landed)), f"two writers got the same version: {landed}"
    assert sorted(landed) == store.versions("shared")
    writers = [int(store.load("shared", v)["writer"][0]) for v in store.versions("shared")]
    assert len(set(writers)) == len(writers)  # every registered version holds its own writer's data
