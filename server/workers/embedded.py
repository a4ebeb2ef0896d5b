"""Embedded mode: a dramatiq worker and the scheduler inside the web process, on its event loop."""

import asyncio

import dramatiq

from server.config import settings
from server.workers import actors, heartbeat, scheduler
from server.workers.broker import broker, embedded_loop

_booted = False


class EmbeddedWorker:
    """Start it on the loop that serves requests; stop it before the database closes.

    Its parts have two lifetimes: the dramatiq threads (`start_threads` … `stop`), and the dispatcher and
    scheduler that work on the connected database (`attach` … `detach`). `start` is both at once; the test
    suite keeps the threads for the whole run and attaches them to each test's database.
    """

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads or settings().worker_threads
        self._worker: dramatiq.Worker | None = None
        self._stop = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._direct: actors.DirectRuns | None = None

    async def start(self) -> None:
        self.start_threads()
        await self.attach()

    def start_threads(self) -> None:
        """The dramatiq worker threads, submitting to the running loop (once; again after `stop`)."""
        global _booted
        if self._worker is not None:
            return
        embedded_loop().loop = asyncio.get_running_loop()
        if not _booted:  # starts TimeLimit's watchdog: once per process
            broker.emit_after("process_boot")
            _booted = True
        self._worker = dramatiq.Worker(broker, worker_threads=self.threads, worker_timeout=100)
        self._worker.start()

    async def attach(self) -> None:
        """Run due runs of the connected database (on this loop; messages and PDFs go to the threads), and
        keep the scheduler polling it."""
        self._direct = actors.direct = actors.DirectRuns(self.threads)
        scheduler.install_dispatcher()
        await scheduler.resend_orphans()  # one process, so nothing else can be holding them
        self._stop.clear()
        self._scheduler = asyncio.get_running_loop().create_task(
            scheduler.run_forever(self._stop, beats=(heartbeat.SCHEDULER, heartbeat.WORKER)))

    async def detach(self) -> None:
        """Nothing more is sent; the scheduler has stopped when this returns."""
        scheduler.uninstall_dispatcher()
        self._stop.set()
        if self._scheduler is not None:
            await self._scheduler
            self._scheduler = None
        if self._direct is not None:
            actors.direct = None
            await self._direct.drain()
            self._direct = None

    async def stop(self) -> None:
        await self.detach()
        if self._worker is not None:
            # Blocking join of worker threads whose coroutines need this loop: run it off-loop.
            await asyncio.to_thread(self._worker.stop)
            # Each Worker adds its own middleware to the broker; drop it so restarts do not pile up.
            broker.middleware[:] = [m for m in broker.middleware if getattr(m, "worker", None) is not self._worker]
            self._worker = None
        broker.flush_all()
