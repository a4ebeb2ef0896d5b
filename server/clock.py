"""The one source of 'now' (timezone-aware UTC): the database's time, so every host agrees on leases and due times.

Each process reads its own clock corrected by the offset of the database's clock, measured with `SELECT now()`
when it starts working and again every `SYNC_EVERY_S` (`keep_in_step`). A host whose clock runs ahead therefore
takes over no lease early and runs no scheduled run early. SQLite is a file on this host: no offset.

PIPEWRIGHT_TEST_CLOCK_SKEW_S is fault injection for the tests only: it moves this process's own clock, as a
host with a wrong clock would have it, so the correction can be shown to undo it.
"""

import asyncio
import logging
import os
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

SYNC_EVERY_S = 60.0
# Warn when the host's clock is this far from the database's: something (NTP) is wrong on the host.
WARN_OFFSET_S = 5.0

_skew = timedelta(seconds=float(os.environ.get("PIPEWRIGHT_TEST_CLOCK_SKEW_S") or 0))
_offset = timedelta()


def host_now() -> datetime:
    """This host's clock, uncorrected."""
    return datetime.now(UTC) + _skew


def utcnow() -> datetime:
    return host_now() + _offset


def offset() -> timedelta:
    """How far the database's clock is ahead of this host's (negative: behind)."""
    return _offset


async def sync_with_database() -> timedelta:
    """Measure the database's clock against this host's; `utcnow` follows the database from now on."""
    global _offset
    from tortoise.connection import get_connection

    connection = get_connection("default")
    if connection.capabilities.dialect != "postgres":
        _offset = timedelta()
        return _offset
    before = host_now()
    _, rows = await connection.execute_query("SELECT clock_timestamp() AS now")
    after = host_now()
    database_now: datetime = rows[0]["now"]
    measured = database_now - (before + (after - before) / 2)  # the query reads the clock about half-way
    if abs(measured.total_seconds()) > WARN_OFFSET_S and abs((measured - _offset).total_seconds()) > 1:
        log.warning("this host's clock is %.1f s %s the database's: following the database's",
                    abs(measured.total_seconds()), "behind" if measured > timedelta() else "ahead of")
    _offset = measured
    return _offset


async def keep_in_step(stop: asyncio.Event | None = None) -> None:
    """`sync_with_database` now and every SYNC_EVERY_S until `stop` (or cancelled); a failed measure keeps the last."""
    while stop is None or not stop.is_set():
        try:
            await sync_with_database()
        except Exception:  # the database is briefly unreachable: keep the offset measured last
            log.warning("measuring the database's clock failed; keeping the last offset", exc_info=True)
        if stop is None:
            await asyncio.sleep(SYNC_EVERY_S)
            continue
        try:
            await asyncio.wait_for(stop.wait(), timeout=SYNC_EVERY_S)
        except TimeoutError:
            pass
