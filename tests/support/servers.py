"""Real PostgreSQL and Redis servers for the tests, started on loopback in temp dirs.

In CI (CI=true) a missing server binary is an error; on a laptop the tests that need it skip.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the repository: child processes run from here


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    message = f"{what} is not installed (apt-get install {what}); see .ci/run"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, process: subprocess.Popen, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout_s} s")


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    url: str
    workdir: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis() -> Server:
    binary = shutil.which("redis-server")
    if binary is None:
        missing("redis-server")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="pw-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    _wait_port(port, process, "redis-server")
    return Server(process, port, f"redis://127.0.0.1:{port}/0", workdir)


def _pg_bin() -> str | None:
    found = shutil.which("initdb") and shutil.which("pg_ctl")
    if found:
        return os.path.dirname(os.path.realpath(shutil.which("initdb")))  # type: ignore[arg-type]
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(candidates[-1]) if candidates else None


def start_postgres() -> Server:
    bindir = _pg_bin()
    if bindir is None:
        missing("postgresql")
    workdir = tempfile.mkdtemp(prefix="pw-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(workdir, "postgres")
        os.chmod(workdir, 0o700)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(workdir, "data")
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    process = subprocess.Popen(
        [*as_user, f"{bindir}/postgres", "-D", data, "-h", "127.0.0.1", "-p", str(port), "-k", workdir,
         "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    _wait_port(port, process, "postgres")
    for _ in range(100):  # listening is not yet accepting: wait until a query works
        ok = subprocess.run([f"{bindir}/psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
                             "CREATE DATABASE pipewright"], capture_output=True)
        if ok.returncode == 0:
            break
        time.sleep(0.1)
    return Server(process, port, f"postgres://postgres@127.0.0.1:{port}/pipewright", workdir)
