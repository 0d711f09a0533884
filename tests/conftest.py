"Shared helpers for the cross-module tests: the project root, its venv, and headless Chromium."
import contextlib
import html
import json
import os
import re
import signal
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT / "tools"))
from servers import free_port, postgres_server, s3_server  # noqa: E402  (tools/ holds the servers' start-up)


def run(cmd, cwd=ROOT, timeout=600, env=None, check=True) -> subprocess.CompletedProcess:
    "Run a command, capturing text output; on an unexpected exit code, fail showing the output."
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        pytest.fail(f"{cmd} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- "
                    f"stderr\n{result.stderr[-4000:]}")
    return result


LESSONS = ROOT / "nbs" / "lessons"


def run_lesson(name: str, workspace: Path, timeout: int = 900) -> dict:
    """Execute lesson `name` in batch with papermill, as an instructor runs the course, into a fresh `workspace` (its
    `workspace` parameter); the executed notebook. Fails naming the first error output."""
    executed = workspace.parent / f"executed-{name}"
    threads = os.environ.get("OMP_NUM_THREADS", "1")    # one math thread per kernel: tests run two at a time
    env = {**os.environ, "WORKBENCH_HOME": str(workspace), "WORKBENCH_PROGRESS": "0", "MPLBACKEND": "agg",
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    run([BIN / "papermill", LESSONS / name, executed, "-k", "workbench", "--cwd", LESSONS, "-p", "workspace",
         workspace, "--log-level", "ERROR"], env=env, timeout=timeout)
    notebook = json.loads(executed.read_text())
    errors = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    return notebook


def first_run(workspace: Path, pipeline: str) -> dict:
    "The record of the first run of `pipeline` in `workspace` (run ids start with their time)."
    return json.loads(sorted((workspace / "pipelines" / pipeline).glob("*/run.json"))[0].read_text())


@contextlib.contextmanager
def workbench_serve(ref: str, registry: Path, env: dict, *options: str):
    "`workbench serve REF` as a real process on a free loopback port: yields (url, process); stopped by SIGTERM."
    from workbench.serve import wait_until_ready
    port = free_port()
    proc = subprocess.Popen([BIN / "workbench", "serve", ref, "--registry", str(registry), "--port",
                             str(port), *options],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, 60, proc)
        yield url, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def copy_project(dest: Path) -> Path:
    "A scratch copy of the project's sources (not its venv, workspace or build outputs), as a git repo."
    ignore = shutil.ignore_patterns(".git", ".venv", "workspace", "_docs", "_proc", "__pycache__", "*.egg-info")
    shutil.copytree(ROOT, dest, ignore=ignore)
    (dest / ".venv").symlink_to((ROOT / ".venv").resolve())
    return dest


def chromium_dom(url: str, wait_ms: int = 0) -> str:
    "The DOM of `url` after its scripts ran, as headless Chromium renders it (offline flags)."
    with tempfile.TemporaryDirectory() as profile:
        cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
               f"--user-data-dir={profile}", "--dump-dom", url]
        if wait_ms:
            cmd.insert(-2, f"--virtual-time-budget={wait_ms}")
        return run(cmd, timeout=120).stdout


def visible_text(dom: str) -> str:
    "Text of an HTML document with tags removed and whitespace collapsed."
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", dom)))



@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server (Debian's package) for this test session (tools/servers.py): yields `fresh()`, which
    creates an empty database and returns its URL."""
    with postgres_server() as fresh:
        yield fresh

@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path, monkeypatch):
    """A store's database, once per engine: a SQLite file, or a fresh database on the session's PostgreSQL server. The
    workspace (weights, model cards, audit log, artifacts) is the test's own, here and in the processes it starts."""
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "workspace"))
    return str(tmp_path / "store.db") if request.param == "sqlite" else request.getfixturevalue("postgres")()



@pytest.fixture(scope="session")
def s3():
    """A local S3-compatible server for this test session (tools/servers.py, moto's server mode): yields the
    environment that points boto3/s3fs at it."""
    with s3_server() as env:
        yield env

@pytest.fixture
def bucket(s3, monkeypatch):
    "A fresh bucket on the session's S3 server, this process's S3 settings pointing there: its `s3://` URL."
    import uuid

    import fsspec
    for k, v in s3.items():
        monkeypatch.setenv(k, v)
    name = f"workbench-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("s3", skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"
