"""Heartbeats: each worker process and each scheduler writes its `WorkerBeat` row every PIPEWRIGHT_HEARTBEAT_S,
on the loop that does its work, so a frozen or dead process stops beating (/health, the operations page)."""

import asyncio
import concurrent.futures
import logging
import os
import socket
from datetime import timedelta
from typing import Any

from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import Middleware

from server import clock
from server.config import settings
from server.models import WorkerBeat
from server.services.operations import SCHEDULER, WORKER

log = logging.getLogger(__name__)

__all__ = ["SCHEDULER", "WORKER", "Heartbeat", "beat", "keep_beating", "prune"]
FORGET_AFTER = timedelta(days=1)  # rows of processes gone this long are pruned


def _name(role: str) -> str:
    return f"{role}:{socket.gethostname()}:{os.getpid()}"


async def beat(role: str) -> None:
    """This process, in `role`, is alive now (one UPDATE; an INSERT the first time)."""
    now = clock.utcnow()
    name = _name(role)
    if not await WorkerBeat.filter(name=name).update(beat_at=now):
        await WorkerBeat.create(name=name, role=role, host=socket.gethostname()[:200], pid=os.getpid(),
                                started_at=now, beat_at=now)


async def keep_beating(role: str) -> None:
    """Beat for `role` now and every heartbeat_s, until the task is cancelled."""
    every_s = settings().heartbeat_s
    while True:
        try:
            await beat(role)
        except Exception:  # the database may be briefly unreachable; a missed beat is what /health is for
            log.warning("heartbeat of the %s not written", role, exc_info=True)
        await asyncio.sleep(every_s)


async def prune() -> int:
    """Forget processes that have not beaten for a day."""
    return await WorkerBeat.filter(beat_at__lt=clock.utcnow() - FORGET_AFTER).delete()


class Heartbeat(Middleware):
    """A production worker process beats from its event-loop thread (where its runs execute), so a process
    whose loop is stuck or frozen stops beating."""

    def __init__(self) -> None:
        self._task: concurrent.futures.Future[None] | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        thread = get_event_loop_thread()
        if thread is not None:
            self._task = asyncio.run_coroutine_threadsafe(keep_beating(WORKER), thread.loop)

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        if self._task is not None:
            self._task.cancel()
