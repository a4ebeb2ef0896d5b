"""The scheduler: sends due runs, messages and document PDFs to the broker, and re-sends those whose lease expired.

Several schedulers may run at once (claims use FOR UPDATE SKIP LOCKED on PostgreSQL).
"""

import asyncio
import logging
import time

from server import clock, events
from server.config import settings
from server.channels import delivery
from server.rules import pdf, queue
from server.services import idempotency
# The dispatcher lives with the actors (a worker process installs it at boot); the web process and the
# embedded worker install it from here.
from server.workers.actors import hand_runs, install_dispatcher, send_documents, send_messages, uninstall_dispatcher
from server.workers import heartbeat

__all__ = ["install_dispatcher", "resend_orphans", "run_forever", "tick", "uninstall_dispatcher"]

log = logging.getLogger(__name__)


async def resend_orphans() -> int:
    """Embedded start-up: runs a previous process left queued or running, and messages it left sending, are
    sent again now (not after their leases)."""
    ids = await queue.recover_expired(orphaned=True)  # every one of them, a page at a time
    if ids:
        await hand_runs(ids)
    messages = await delivery.recover_expired(orphaned=True)
    if messages:
        await asyncio.to_thread(send_messages, messages)
    documents = await pdf.recover_expired(orphaned=True)
    if documents:
        await asyncio.to_thread(send_documents, documents)
    return len(ids) + len(messages) + len(documents)


async def tick(*, sweep: bool) -> int:
    """One pass: claim due runs (and, when `sweep`, expired leases) and send them."""
    sent = await queue.claim_due()
    if sweep:
        sent += await queue.recover_expired()
    if sent:
        await hand_runs(sent)
    messages = await delivery.claim_due()
    if sweep:
        messages += await delivery.recover_expired()
    if messages:
        await asyncio.to_thread(send_messages, messages)
    documents = await pdf.claim_due()
    if sweep:
        documents += await pdf.recover_expired()
    if documents:
        await asyncio.to_thread(send_documents, documents)
    return len(sent) + len(messages) + len(documents)


PRUNE_EVERY_S = 600


async def run_forever(stop: asyncio.Event, *, beats: tuple[str, ...] = (heartbeat.SCHEDULER,)) -> None:
    """Poll until `stop`. Each pass may beat for `beats` (embedded, the in-process worker shares this loop, so
    the scheduler beats for it too)."""
    config = settings()
    poll_s = config.poll_ms / 1000
    sweep_every = max(1, config.sweep_ms // max(config.poll_ms, 1))
    ticks = 0
    next_prune = next_clock_sync = next_beat = time.monotonic()

    async def beat_when_due() -> None:
        nonlocal next_beat
        if time.monotonic() >= next_beat:
            next_beat = time.monotonic() + config.heartbeat_s
            for role in beats:
                await heartbeat.beat(role)

    while not stop.is_set():
        try:
            if time.monotonic() >= next_clock_sync:  # due times and leases are compared on the database's clock
                next_clock_sync = time.monotonic() + clock.SYNC_EVERY_S
                await clock.sync_with_database()
            await beat_when_due()
            while await tick(sweep=ticks % sweep_every == 0) >= 200:  # a backlog: drain it before sleeping
                await beat_when_due()  # a scheduler draining a backlog is not stalled
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY_S
                if pruned := await events.prune():
                    log.info("pruned %d live events past the retention", pruned)
                if pruned := await idempotency.prune():
                    log.info("pruned %d idempotency keys past the retention", pruned)
                await heartbeat.prune()
        except Exception:  # the database may be briefly unreachable; the next tick tries again
            log.exception("scheduler tick failed")
        ticks += 1
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_s)
        except TimeoutError:
            pass
