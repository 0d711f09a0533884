"""Real servers started on loopback for the tests and benchmarks, each stopped (by its process) on exit: PostgreSQL
from Debian's package, and an S3-compatible object store (moto's server mode). Nothing needs to run beforehand."""
import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    "A TCP port free on 127.0.0.1 right now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check(cmd, timeout=300) -> None:
    result = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"{cmd} exited {result.returncode}: {result.stdout[-2000:]}{result.stderr[-2000:]}")


def _postgres_bin() -> Path:
    "The folder of Debian's PostgreSQL server programs, installed (tools/apt.sh) when missing."
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        _check(["bash", ROOT / "tools" / "apt.sh", "postgresql"], timeout=900)
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent


@contextlib.contextmanager
def postgres_server():
    """A PostgreSQL server on a free loopback port, its socket and data in a private folder; yields `fresh()`, which
    creates an empty database and returns its URL. As root the server runs as the `postgres` user (it refuses root)."""
    import sqlalchemy as sa
    bin_dir, folder = _postgres_bin(), Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    user, data, port = ("postgres" if as_user else getpass.getuser()), folder / "data", free_port()
    _check([*as_user, bin_dir / "initdb", "-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"])
    _check([*as_user, bin_dir / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-t", "60", "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200", "start"])
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
        subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def s3_server():
    """An S3-compatible server (moto's server mode, a real HTTP server process) on a free loopback port; yields the
    environment that points boto3/s3fs at it (AWS_ENDPOINT_URL and test credentials)."""
    port = free_port()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "workbench-test",
           "AWS_SECRET_ACCESS_KEY": "workbench-test", "AWS_DEFAULT_REGION": "us-east-1"}
    log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log")      # it logs every request: never a pipe
    server = subprocess.Popen([BIN / "moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.time() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"moto_server did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.1)
        yield env
    finally:
        server.send_signal(signal.SIGINT)                  # werkzeug's server stops on Ctrl-C
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
