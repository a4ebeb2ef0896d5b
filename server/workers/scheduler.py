"""The scheduler: sends due runs and messages to the broker, and re-sends those whose lease expired.

Several schedulers may run at once (claims use FOR UPDATE SKIP LOCKED on PostgreSQL).
"""

import asyncio
import logging
import time

from server import events
from server.config import settings
from server.channels import delivery
from server.rules import queue
from server.services import idempotency
# The dispatcher lives with the actors (a worker process installs it at boot); the web process and the
# embedded worker install it from here.
from server.workers.actors import install_dispatcher, send, send_messages, uninstall_dispatcher

__all__ = ["install_dispatcher", "resend_orphans", "run_forever", "tick", "uninstall_dispatcher"]

log = logging.getLogger(__name__)


async def resend_orphans() -> int:
    """Embedded start-up: runs a previous process left queued or running, and messages it left sending, are
    sent again now (not after their leases)."""
    ids = await queue.recover_expired(orphaned=True)
    if ids:
        await asyncio.to_thread(send, ids)
    messages = await delivery.recover_expired(orphaned=True)
    if messages:
        await asyncio.to_thread(send_messages, messages)
    return len(ids) + len(messages)


async def tick(*, sweep: bool) -> int:
    """One pass: claim due runs (and, when `sweep`, expired leases) and send them."""
    sent = await queue.claim_due()
    if sweep:
        sent += await queue.recover_expired()
    if sent:
        await asyncio.to_thread(send, sent)
    messages = await delivery.claim_due()
    if sweep:
        messages += await delivery.recover_expired()
    if messages:
        await asyncio.to_thread(send_messages, messages)
    return len(sent) + len(messages)


PRUNE_EVERY_S = 600


async def run_forever(stop: asyncio.Event) -> None:
    config = settings()
    poll_s = config.poll_ms / 1000
    sweep_every = max(1, config.sweep_ms // max(config.poll_ms, 1))
    ticks = 0
    next_prune = time.monotonic()
    while not stop.is_set():
        try:
            while await tick(sweep=ticks % sweep_every == 0) >= 200:  # a backlog: drain it before sleeping
                pass
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY_S
                if pruned := await events.prune():
                    log.info("pruned %d live events past the retention", pruned)
                if pruned := await idempotency.prune():
                    log.info("pruned %d idempotency keys past the retention", pruned)
        except Exception:  # the database may be briefly unreachable; the next tick tries again
            log.exception("scheduler tick failed")
        ticks += 1
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_s)
        except TimeoutError:
            pass
