"""Ingest throughput of the data layer vs a plain `cp -r`, on the same disk, in one run.

A folder of random files (1 GiB by default: 256 files of 4 MiB; WORKBENCH_BENCH_INGEST_MB to change) is
copied with `cp -r` (the physical baseline: one read and one write per byte) and ingested with
`DataStore.ingest_files` (one read, SHA-256 and one write per byte, plus a rename). Both runs start with the
source files in the page cache (a warm-up read), and both targets live on the same file system.
Goal (issue 3): ingest at >= 0.5x the speed of cp, i.e. a time ratio ours/cp <= 2.
"""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from workbench.data import DataStore


def make_folder(root: Path, total_mb: int, file_mb: int = 4) -> Path:
    folder = root / "source"
    folder.mkdir()
    chunk = os.urandom(file_mb << 20)
    for i in range(max(1, total_mb // file_mb)):
        # distinct content per file: a counter prefix changes the hash without regenerating random bytes
        (folder / f"part-{i:04d}.bin").write_bytes(i.to_bytes(8, "little") + chunk[8:])
    return folder


def timed(fn) -> float:
    os.sync()
    start = time.perf_counter()
    fn()
    os.sync()  # count the writes reaching the disk, for both
    return time.perf_counter() - start


def run() -> list[dict]:
    total_mb = int(os.environ.get("WORKBENCH_BENCH_INGEST_MB", "1024"))
    with tempfile.TemporaryDirectory(dir=os.environ.get("WORKBENCH_BENCH_DIR")) as d:
        root = Path(d)
        folder = make_folder(root, total_mb)
        for p in folder.iterdir():  # warm the page cache for both contenders
            p.read_bytes()
        cp = timed(lambda: subprocess.run(["cp", "-r", str(folder), str(root / "copy")], check=True))
        shutil.rmtree(root / "copy")
        store = DataStore(root / "store")
        ours = timed(lambda: store.ingest_files("bench", folder))
        again = timed(lambda: store.ingest_files("bench", folder))  # everything already stored
    return [
        {"name": f"ingest {total_mb} MiB folder", "ours": ours, "baseline": cp, "baseline_name": "cp -r", "unit": "s",
         "goal": "<= 2", "throughput_mb_s": total_mb / ours, "cp_mb_s": total_mb / cp},
        {"name": f"re-ingest {total_mb} MiB (all stored)", "ours": again, "baseline": cp,
         "baseline_name": "cp -r", "unit": "s"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
