"""Keeping a lease while the work it covers goes on (a rule run's action, a message's send).

A heartbeat renews the lease every third of its length, each renewal its own short statement (not the work's
transaction, which may hold locks for a long time), so a slow but alive attempt is never taken over. When a
renewal finds the lease gone (the attempt was taken over after it stalled), the work is cancelled at once and
`LeaseLost` raised in its place: it rolls back instead of finishing work another attempt now owns.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)

Renew = Callable[[], Awaitable[bool]]  # extend the lease; False when this attempt no longer holds it


class LeaseLost(Exception):
    """Another attempt took the work over while this one was still at it."""


class Heartbeat:
    """The renewing task of one `kept` block."""

    def __init__(self, renew: Renew, *, lease_s: float, what: str, owner: asyncio.Task[object]) -> None:
        self.renew, self.lease_s, self.what, self.owner = renew, lease_s, what, owner
        self.lost = False
        self._task = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(max(self.lease_s / 3, 0.05))
            try:
                renewed = await self.renew()
            except Exception:  # the database is briefly unreachable: the next beat tries again
                log.warning("renewing the lease of %s failed", self.what, exc_info=True)
                continue
            if not renewed:
                log.warning("%s was taken over by another attempt: this one stops", self.what)
                self.lost = True
                self.owner.cancel()
                return

    def stop(self) -> None:
        """The work's outcome is being recorded under its own compare-and-set: no more renewals."""
        self._task.cancel()


@asynccontextmanager
async def kept(renew: Renew, *, lease_s: float, what: str) -> AsyncIterator[Heartbeat]:
    """Renew a lease while the block runs. Enter it outside the work's transaction (the renewals must not
    join it); call `stop()` once the block's final compare-and-set has succeeded."""
    owner = asyncio.current_task()
    assert owner is not None, "kept() runs inside a task"
    heartbeat = Heartbeat(renew, lease_s=lease_s, what=what, owner=owner)
    try:
        yield heartbeat
    except asyncio.CancelledError:
        if heartbeat.lost and owner.uncancel() == 0:  # our cancellation, nobody else's
            raise LeaseLost(f"{what} was taken over by another attempt after its lease expired") from None
        raise
    finally:
        heartbeat.stop()
