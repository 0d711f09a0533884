"Shared helpers for the cross-module tests: the project root, its venv, and headless Chromium."
import contextlib
import html
import json
import os
import re
import signal
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


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


def free_port() -> int:
    "A TCP port free on 127.0.0.1 right now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def _postgres_bin() -> Path:
    "The folder of Debian's PostgreSQL server programs, installed (tools/apt.sh) when missing."
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        run(["bash", ROOT / "tools" / "apt.sh", "postgresql"], timeout=900)
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server (Debian's package) for this test session, on a free loopback port with its socket and
    data in a private folder; yields `fresh()`, which creates an empty database and returns its URL. Stopped at the end.
    As root the server runs as the `postgres` user (it refuses root)."""
    import getpass
    import uuid
    bin_dir, folder = _postgres_bin(), Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    user = "postgres" if as_user else getpass.getuser()
    data, port = folder / "data", free_port()
    run([*as_user, bin_dir / "initdb", "-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"])
    run([*as_user, bin_dir / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-t", "60", "-o",
         f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200", "start"], timeout=120)
    import sqlalchemy as sa
    admin = sa.create_engine(f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT")

    def fresh() -> str:
        name = f"wb_{uuid.uuid4().hex[:12]}"
        with admin.connect() as db:
            db.exec_driver_sql(f"CREATE DATABASE {name}")
        return f"postgresql://{user}@127.0.0.1:{port}/{name}"
    try:
        yield fresh
    finally:
        admin.dispose()
        run([*as_user, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], check=False, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path, monkeypatch):
    """A store's database, once per engine: a SQLite file, or a fresh database on the session's PostgreSQL server. The
    workspace (weights, model cards, audit log, artifacts) is the test's own, here and in the processes it starts."""
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "workspace"))
    return str(tmp_path / "store.db") if request.param == "sqlite" else request.getfixturevalue("postgres")()


@pytest.fixture(scope="session")
def s3_server():
    """A local S3-compatible server (moto's server mode, a real HTTP server process on a free loopback port) for this
    test session: yields the environment that points boto3/s3fs at it (AWS_ENDPOINT_URL and test credentials)."""
    port = free_port()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "workbench-test",
           "AWS_SECRET_ACCESS_KEY": "workbench-test", "AWS_DEFAULT_REGION": "us-east-1"}
    log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log")      # it logs every request: never a pipe
    server = subprocess.Popen([BIN / "moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        import time
        deadline = time.time() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None and time.time() < deadline, \
                f"moto_server did not start: {Path(log.name).read_text()[-2000:]}"
            time.sleep(0.1)
        yield env
    finally:
        server.send_signal(signal.SIGINT)                  # werkzeug's server stops on Ctrl-C
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def bucket(s3_server, monkeypatch):
    "A fresh bucket on the session's S3 server, this process's S3 settings pointing there: its `s3://` URL."
    import uuid

    import fsspec
    for k, v in s3_server.items():
        monkeypatch.setenv(k, v)
    name = f"workbench-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("s3", skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"
