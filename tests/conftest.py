"""Fixtures: a migrated database and a running worker, on the backend PIPEWRIGHT_TEST_BACKEND names.

- `sqlite` (default): a fresh SQLite file per test, the embedded worker on the test's loop.
- `postgres`: one PostgreSQL database (emptied between tests), a real Redis broker, and a
  separate `pipewright worker` process (dramatiq + scheduler), as in production.
"""

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from tests.support import ClockControl, make_token
from tests.support.api import Api
from tests.support.api import api as api_as
from tests.support.live_server import running_app
from tests.support.peers import SmsGatewayStandIn, SmtpPeer
from tests.support.servers import ROOT, Server, start_postgres, start_redis

BACKEND = os.environ.get("PIPEWRIGHT_TEST_BACKEND", "sqlite")


def pytest_report_header() -> str:
    return f"pipewright test backend: {BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of one backend's own mechanism are deselected on the other: those that kill worker processes
    (production_only) on SQLite, those of SQLite's settings or the embedded worker (sqlite_only) on PostgreSQL."""
    other = "sqlite_only" if BACKEND == "postgres" else "production_only"
    kept = [item for item in items if item.get_closest_marker(other) is None]
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
def smtp_peer() -> Iterator[SmtpPeer]:
    """One real SMTP server for the run; every test's worker (embedded or separate) sends to it."""
    peer = SmtpPeer()
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="session")
def sms_gateway() -> Iterator[SmsGatewayStandIn]:
    gateway = SmsGatewayStandIn()
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def smtp(smtp_peer: SmtpPeer) -> Iterator[SmtpPeer]:
    """The SMTP peer, empty and accepting, for one test (and back up if the test took it down)."""
    smtp_peer.clear()
    yield smtp_peer
    smtp_peer.clear()
    if smtp_peer._controller is None:
        smtp_peer.start()


@pytest.fixture
def sms(sms_gateway: SmsGatewayStandIn) -> Iterator[SmsGatewayStandIn]:
    sms_gateway.clear()
    yield sms_gateway
    sms_gateway.clear()


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory, smtp_peer: SmtpPeer,
            sms_gateway: SmsGatewayStandIn) -> Iterator[Backend]:
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
        "PIPEWRIGHT_SMTP_URL": smtp_peer.url,
        "PIPEWRIGHT_SMS_URL": sms_gateway.url,
        "PIPEWRIGHT_MESSAGE_RETRY_BASE_MS": "200",
        "PIPEWRIGHT_MESSAGE_LEASE_S": "3",
        "PIPEWRIGHT_FILES_DIR": str(tmp_path_factory.mktemp("files")),  # the worker's and the tests' file store
        "PYTHONPATH": str(ROOT),
    }
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


async def _empty_tables(connection: Any) -> None:
    """TRUNCATE every table. The worker may still be finishing the previous test's work (a send, a run): its
    locks can deadlock with the TRUNCATE's, and PostgreSQL then aborts one side; whichever it was, try again."""
    statement = "TRUNCATE " + ", ".join(f'"{t}"' for t in _tables()) + " CASCADE"
    for attempt in range(5):
        try:
            await connection.execute_script(statement)
            return
        except Exception as exc:  # asyncpg's DeadlockDetectedError, raw or wrapped by Tortoise
            if "deadlock" not in str(exc).lower() or attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))


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


class SharedEmbeddedWorker:
    """The embedded worker for SQLite tests: its dramatiq threads start once per test run (starting and
    stopping them cost 0.2 s a test), and it is attached to each test's database in turn. `pipewright serve`,
    in the tests that start it, runs `EmbeddedWorker.start` as a whole."""

    def __init__(self, threads: int) -> None:
        from server.workers.embedded import EmbeddedWorker

        self.worker = EmbeddedWorker(threads=threads)

    async def attach(self) -> None:
        self.worker.start_threads()
        await self.worker.attach()

    async def detach(self) -> None:
        """Before the database closes: nothing new is sent, nothing unsent is kept, and what a worker thread
        already holds finishes on this database (a run id of this test must never run in the next one)."""
        from server.workers.broker import broker

        await self.worker.detach()
        broker.flush_all()
        # The actors run on this loop, so wait for them off it.
        for queue in ("rule_runs", "messages", "documents"):
            await asyncio.to_thread(broker.join, queue, timeout=60_000, fail_fast=False)

    async def stop(self) -> None:
        await self.worker.stop()


@pytest.fixture(scope="session")
async def embedded_worker() -> AsyncIterator[SharedEmbeddedWorker]:
    shared = SharedEmbeddedWorker(threads=4)
    try:
        yield shared
    finally:
        await shared.stop()


@pytest.fixture
async def db(backend: Backend, sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             embedded_worker: SharedEmbeddedWorker, smtp_peer: SmtpPeer,
             sms_gateway: SmsGatewayStandIn) -> AsyncIterator[Backend]:
    """A migrated, empty database with a worker running against it."""
    from server import config, database, live

    live.install_publisher()  # the test process publishes the events it commits, as a web process does
    monkeypatch.setenv("PIPEWRIGHT_RETRY_BASE_MS", "200")
    monkeypatch.setenv("PIPEWRIGHT_POLL_MS", "100")
    # Messages go to the session's real SMTP peer and the SMS stand-in (a test of the capture mailbox unsets them).
    monkeypatch.setenv("PIPEWRIGHT_SMTP_URL", smtp_peer.url)
    monkeypatch.setenv("PIPEWRIGHT_SMS_URL", sms_gateway.url)
    monkeypatch.setenv("PIPEWRIGHT_MESSAGE_RETRY_BASE_MS", "200")
    if backend.kind == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite://{path}"
        monkeypatch.setenv("PIPEWRIGHT_DATABASE_URL", url)
        config.reload()
        await database.connect(url)
        await embedded_worker.attach()
        try:
            yield backend
        finally:
            await embedded_worker.detach()
            await database.disconnect()
            config.reload()
        return
    monkeypatch.setenv("PIPEWRIGHT_DATABASE_URL", backend.database_url or "")
    monkeypatch.setenv("PIPEWRIGHT_BROKER_URL", backend.redis.url)  # live events travel over Redis pub/sub
    monkeypatch.setenv("PIPEWRIGHT_FILES_DIR", backend.worker.env["PIPEWRIGHT_FILES_DIR"])
    config.reload()
    await database.connect(backend.database_url)
    from tortoise.connection import get_connection

    await _empty_tables(get_connection("default"))
    try:
        yield backend
    finally:
        await database.disconnect()
        config.reload()


# ---------------------------------------------------------------- time and the worker, under the test's control


@pytest.fixture
def clock_control(monkeypatch: pytest.MonkeyPatch) -> ClockControl:
    """Move this process's clock instead of sleeping (or of writing due times into rows).

    Only this process: on the production backend the separate worker keeps the real time.
    """
    from server import clock

    control = ClockControl(clock.utcnow)
    monkeypatch.setattr(clock, "utcnow", control.now)
    return control


@pytest.fixture
async def worker_paused(db: Backend, embedded_worker: SharedEmbeddedWorker) -> AsyncIterator[None]:
    """No worker takes runs while the test plays the workers itself (several at once, or one coming late)."""
    if db.kind == "sqlite":
        await embedded_worker.detach()
        try:
            yield
        finally:
            await embedded_worker.attach()
        return
    assert db.worker is not None
    db.worker.pause()
    try:
        yield
    finally:
        db.worker.resume()


# ---------------------------------------------------------------- the app, for the faces' tests


@pytest.fixture
async def served(db: Backend) -> AsyncIterator[str]:
    """The app under uvicorn in the test's loop, on the `db` fixture's database: "127.0.0.1:<port>"."""
    async with running_app() as address:
        yield address


@pytest.fixture
async def client(db: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client of the app in-process."""
    transport = httpx.ASGITransport(app=create_app(runtime=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as anonymous:
        yield anonymous


@pytest.fixture
async def admin_client(db: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """An admin's client of the app in-process: the API token goes in the Authorization header."""
    _, token = await make_token("admin")
    async with api_as(token) as admin:
        yield admin


@pytest.fixture
async def api(db: Backend) -> Api:
    """The app in-process, for a test that speaks as several token holders."""
    return Api(httpx.ASGITransport(app=create_app(runtime=False)))
