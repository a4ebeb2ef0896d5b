"""Fixtures: a migrated database and a running worker, on the backend PIPEWRIGHT_TEST_BACKEND names.

- `sqlite` (default): a fresh SQLite file per test, the embedded worker on the test's loop.
- `postgres`: one PostgreSQL database (emptied between tests), a real Redis broker, and a
  separate `pipewright worker` process (dramatiq + scheduler), as in production.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.servers import ROOT, Server, start_postgres, start_redis

BACKEND = os.environ.get("PIPEWRIGHT_TEST_BACKEND", "sqlite")


def pytest_report_header() -> str:
    return f"pipewright test backend: {BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that kill worker processes exist only on the production backend: deselect them elsewhere."""
    if BACKEND == "postgres":
        return
    kept = [item for item in items if item.get_closest_marker("production_only") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@dataclass
class WorkerProcess:
    """`pipewright worker` as a child process, as an operator would run it."""

    env: dict[str, str]
    process: subprocess.Popen | None = None
    log_path: Path = field(default_factory=lambda: Path(os.environ.get("TMPDIR", "/tmp")) / f"pw-worker-{os.getpid()}.log")

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "worker", "--processes", "2", "--threads", "4"],
                env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def pause(self) -> None:
        """SIGSTOP the worker (scheduler included), so the test alone claims runs meanwhile."""
        assert self.process is not None
        os.killpg(self.process.pid, 19)

    def resume(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, 18)

    def kill_hard(self) -> None:
        """kill -9 the whole worker (scheduler and dramatiq processes): nothing gets to clean up."""
        assert self.process is not None
        os.killpg(self.process.pid, 9)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


@dataclass
class Backend:
    kind: str
    database_url: str | None = None
    redis: Server | None = None
    postgres: Server | None = None
    worker: WorkerProcess | None = None


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if BACKEND == "sqlite":
        yield Backend("sqlite")
        return
    postgres = start_postgres()
    redis = start_redis()
    env = {
        **os.environ,
        "PIPEWRIGHT_DATABASE_URL": postgres.url,
        "PIPEWRIGHT_BROKER_URL": redis.url,
        "PIPEWRIGHT_POLL_MS": "100",
        "PIPEWRIGHT_SWEEP_MS": "500",
        "PIPEWRIGHT_LEASE_S": "3",
        "PIPEWRIGHT_RETRY_BASE_MS": "200",
        "PYTHONPATH": str(ROOT),
    }
    import asyncio

    from server import database

    asyncio.run(database.migrate(postgres.url))
    worker = WorkerProcess(env)
    worker.start()
    try:
        yield Backend("postgres", postgres.url, redis, postgres, worker)
    finally:
        worker.stop()
        redis.stop()
        postgres.stop()


def _tables() -> list[str]:
    """Every table the models define, from Tortoise's registry: a new model is emptied without a list to keep."""
    from tortoise import Tortoise

    return sorted({model._meta.db_table for app in Tortoise.apps.values() for model in app.values()})


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per test run; each test gets a copy (migrating per test cost most of the suite)."""
    from server import database

    path = tmp_path_factory.mktemp("template") / "migrated.db"
    await database.migrate(f"sqlite://{path}")
    for suffix in ("-wal", "-shm"):  # closed cleanly: everything is in the main file
        assert not Path(f"{path}{suffix}").exists() or Path(f"{path}{suffix}").stat().st_size == 0, suffix
    return path


@pytest.fixture
async def db(backend: Backend, sqlite_template: Path, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Backend]:
    """A migrated, empty database with a worker running against it."""
    from server import config, database

    monkeypatch.setenv("PIPEWRIGHT_RETRY_BASE_MS", "200")
    monkeypatch.setenv("PIPEWRIGHT_POLL_MS", "100")
    if backend.kind == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite://{path}"
        monkeypatch.setenv("PIPEWRIGHT_DATABASE_URL", url)
        config.reload()
        await database.connect(url)
        from server.workers.embedded import EmbeddedWorker

        worker = EmbeddedWorker(threads=4)
        await worker.start()
        try:
            yield backend
        finally:
            await worker.stop()
            await database.disconnect()
            config.reload()
        return
    monkeypatch.setenv("PIPEWRIGHT_DATABASE_URL", backend.database_url or "")
    monkeypatch.setenv("PIPEWRIGHT_BROKER_URL", backend.redis.url)  # live events travel over Redis pub/sub
    config.reload()
    await database.connect(backend.database_url)
    from tortoise.connection import get_connection

    await get_connection("default").execute_script(
        "TRUNCATE " + ", ".join(f'"{t}"' for t in _tables()) + " CASCADE"
    )
    try:
        yield backend
    finally:
        await database.disconnect()
        config.reload()
