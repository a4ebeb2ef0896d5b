"""Embedded mode: a dramatiq worker and the scheduler inside the web process, on its event loop."""

import asyncio

import dramatiq

from server.config import settings
from server.rules import dispatch
from server.workers import scheduler
from server.workers.broker import broker, embedded_loop

_booted = False


class EmbeddedWorker:
    """Start it on the loop that serves requests; stop it before the database closes."""

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads or settings().worker_threads
        self._worker: dramatiq.Worker | None = None
        self._stop = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None

    async def start(self) -> None:
        global _booted
        embedded_loop().loop = asyncio.get_running_loop()
        if not _booted:  # starts TimeLimit's watchdog: once per process
            broker.emit_after("process_boot")
            _booted = True
        self._worker = dramatiq.Worker(broker, worker_threads=self.threads, worker_timeout=100)
        self._worker.start()
        scheduler.install_dispatcher()
        await scheduler.resend_orphans()  # one process, so nothing else can be holding them
        self._stop.clear()
        self._scheduler = asyncio.get_running_loop().create_task(scheduler.run_forever(self._stop))

    async def stop(self) -> None:
        dispatch.set_dispatcher(None)
        self._stop.set()
        if self._scheduler is not None:
            await self._scheduler
        if self._worker is not None:
            # Blocking join of worker threads whose coroutines need this loop: run it off-loop.
            await asyncio.to_thread(self._worker.stop)
            # Each Worker adds its own middleware to the broker; drop it so restarts do not pile up.
            broker.middleware[:] = [m for m in broker.middleware if getattr(m, "worker", None) is not self._worker]
        broker.flush_all()
