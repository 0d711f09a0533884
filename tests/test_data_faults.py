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
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(files)],
                              env={**os.environ, "WORKBENCH_PROGRESS": "0"})
    objects = root / "objects"
    deadline = time.monotonic() + 60
    # a stored object, not just its folder
    while time.monotonic() < deadline and not any(p.is_file() for p in objects.rglob("*")):
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
    report = store.fsck(remove_staging=True)           # what the killed writer had staged is listed, then removed
    assert report["corrupt"] == report["missing"] == report["bad_cards"] == report["unreferenced"] == []
    assert store.fsck()["staging"] == []
    assert store.load("scans").read("scan-007.bin") == (files / "scan-007.bin").read_bytes()


# Fifty kill -9s at random lines of the data layer's code during ingests (a tracer counts the lines executed in
# workbench/data.py and the process kills itself at a random one). Children are forked from one process that imported
# everything once. After every kill, fsck finds nothing corrupt, missing or dangling, and every registered version
# loads whole; at the end the staged leftovers are removed and a last ingest completes.
KILLS = """
import os, random, signal, sys
from pathlib import Path
import pandas as pd
import workbench.data as wd

root, files = Path(sys.argv[1]), Path(sys.argv[2])
table = pd.DataFrame({"x": range(2000), "y": [i * 0.5 for i in range(2000)]})

def ingest(kill_at_line, seed):
    "Ingest the files and a table; with `kill_at_line`, die at that line executed in workbench/data.py. Lines run."
    lines = 0
    def count(frame, event, arg):
        nonlocal lines
        if event == "line":
            lines += 1
            if lines == kill_at_line:
                os.kill(os.getpid(), signal.SIGKILL)
        return count
    sys.settrace(lambda frame, event, arg: count if frame.f_code.co_filename == wd.__file__ else None)
    store = wd.DataStore(root)
    store.ingest_files("scans", files)
    store.ingest_table("table", table.assign(x=table.x + seed), source="test")    # a new version every time
    sys.settrace(None)
    return lines

def child(kill_at_line, seed) -> int:
    pid = os.fork()
    if pid == 0:
        ingest(kill_at_line, seed)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

total = ingest(0, -1)                             # how many lines one ingest runs (its files are stored by now)
rng = random.Random(1)
for attempt in range(50):
    line = rng.randint(1, total)
    code = child(line, attempt)
    store = wd.DataStore(root)
    report = store.fsck()
    assert report["corrupt"] == report["missing"] == report["bad_cards"] == [], (attempt, line, code, report)
    for name in store.datasets():
        for version in store.versions(name):
            store.load(name, version)
    print("kill", attempt, line, code, len(report["staging"]), flush=True)
"""


def test_fifty_random_kills_during_ingest_leave_fsck_clean(tmp_path):
    files = make_files(tmp_path / "scans", n=12, size=20_000)
    env = {**os.environ, "WORKBENCH_PROGRESS": "0"}
    result = subprocess.run([sys.executable, "-c", KILLS, str(tmp_path / "store"), str(files)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = [line.split()[1:] for line in result.stdout.splitlines() if line.startswith("kill ")]
    assert len(outcomes) == 50 and all(o[2] == str(-signal.SIGKILL) for o in outcomes), outcomes   # all mid-ingest
    store = DataStore(tmp_path / "store")
    assert store.fsck(remove_staging=True)["corrupt"] == []
    assert store.ingest_files("scans", files).rows == 12
    # tables the killed writers stored but never registered stay unreferenced
    report = store.fsck()
    assert report["corrupt"] == report["missing"] == report["bad_cards"] == report["staging"] == [], report


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
