"""Claiming runs for execution: due runs, and runs whose lease expired (lost message, dead worker)."""

from datetime import datetime

from tortoise.queryset import QuerySet

from server import clock
from server.config import settings
from server.db import transaction
from server.kinds import RunStatus
from server.models import RuleRun
from server.rules import pausing
from server.rules.engine import advance_lane, queued_lease_until, run_event

# Expired or orphaned runs are recovered this many at a time, each page its own transaction, until none is left.
RECOVER_PAGE = 500


CLAIMABLE = (RunStatus.scheduled, RunStatus.waiting)  # what the scheduler claims when due


def due_runs(status: RunStatus, now: datetime, limit: int) -> QuerySet[RuleRun]:
    """Runs of one status due by `now`, earliest first, those of paused rules left out. One status at a time,
    so the (status, due_at, id) index hands them over in order and a claim reads `limit` entries of it, however
    many runs are due (with both statuses in one query both planners read and sort every due run)."""
    return (RuleRun.filter(status=status, due_at__lte=now).exclude(rule_id__in=pausing.paused())
            .order_by("due_at", "id").limit(limit))


async def _claim(queries: list[QuerySet[RuleRun]], limit: int, now: datetime) -> list[int]:
    async with transaction():
        # `.only(...)`, not `values_list`: Tortoise drops FOR UPDATE from a values query. Each query locks up to
        # `limit` runs; the earliest `limit` of them all are claimed, the rest are let go at the commit.
        found = [row for query in queries
                 for row in await query.select_for_update(skip_locked=True).only("id", "due_at")]
        found.sort(key=lambda row: (row.due_at, row.id))
        ids = [row.id for row in found[:limit]]
        if ids:
            # By id alone: the rows are this transaction's (locked FOR UPDATE; SQLite's BEGIN IMMEDIATE holds the
            # write lock), so their status is as read. A status term would let SQLite walk the (status, ...) index
            # over every due run instead of 200 primary-key look-ups (145 ms a claim with 100,000 due).
            await RuleRun.filter(id__in=ids).update(
                status=RunStatus.queued, lease_until=await queued_lease_until(now, joining=len(ids))
            )
    return ids


async def claim_due(*, limit: int = 200) -> list[int]:
    """Scheduled runs whose time has come, and blocked runs whose wait timed out → queued, earliest first. Due
    runs of paused rules stay, and are told why (the poll does it, so the fast path after a commit costs no
    statement more)."""
    now = clock.utcnow()
    paused = await pausing.paused_rule_ids()
    if paused:
        await pausing.hold(paused, now)
    return await _claim([due_runs(status, now, limit) for status in CLAIMABLE], limit, now)


async def claim(run_ids: list[int]) -> list[int]:
    """Those of `run_ids` that are due now → queued (the fast path right after a commit)."""
    now = clock.utcnow()
    return await _claim([due_runs(RunStatus.scheduled, now, len(run_ids)).filter(id__in=run_ids)], len(run_ids), now)


def lost_too_often(attempts: int, *, orphaned: bool) -> str:
    """Why a run that kept losing its worker failed, in words an operator can act on."""
    if orphaned:
        how = "each time the process running it stopped before it finished"
    else:
        how = (f"each attempt stopped renewing its {settings().lease_s} s lease (PIPEWRIGHT_LEASE_S): the worker "
               "was killed, frozen or cut off from the database")
    return f"its worker was lost {attempts} times ({how}); gave up after {attempts} attempts"


async def give_back(run_ids: list[int]) -> None:
    """Claimed runs the broker did not take: their queued lease ends now, so the next sweep sends them."""
    await RuleRun.filter(id__in=run_ids, status=RunStatus.queued).update(lease_until=clock.utcnow())


async def due_backlog(bound: int) -> int:
    """Rule runs due and not yet started (scheduled past their due time, or queued for a worker), counted up to
    `bound` + 1: how far behind the workers are."""
    due = RuleRun.filter(status__in=(RunStatus.scheduled, RunStatus.queued), due_at__lte=clock.utcnow())
    return len(await due.limit(bound + 1).values_list("id", flat=True))


async def recover_expired(*, page: int = RECOVER_PAGE, orphaned: bool = False) -> list[int]:
    """Queued or running runs past their lease go back to queued, to be sent again: all of them, `page` at
    a time.

    With `orphaned`, every queued or running run counts as expired: for a single process that
    starts up and knows no other worker can hold them (embedded mode after a crash).

    A running attempt renews its lease while it works, so only a lost worker lets it expire. The attempt
    counter makes a slow worker that comes back lose its compare-and-set, so its effect rolls back; a run
    that loses its worker too often fails with the reason.
    """
    recovered: list[int] = []
    after_id = 0
    while True:
        found, after_id = await _recover_page(after_id, page, orphaned, recovered)
        if found < page:
            return recovered


async def _recover_page(after_id: int, page: int, orphaned: bool, recovered: list[int]) -> tuple[int, int]:
    now = clock.utcnow()
    max_attempts = settings().max_attempts
    async with transaction():
        expired = await (
            RuleRun.filter(status__in=(RunStatus.queued, RunStatus.running), id__gt=after_id,
                           **({} if orphaned else {"lease_until__lt": now}))
            .order_by("id").limit(page).select_for_update(skip_locked=True)
        )
        if not expired:
            return 0, after_id
        requeue = []
        for run in expired:
            if run.status == RunStatus.running and run.attempts >= max_attempts:
                error = lost_too_often(run.attempts, orphaned=orphaned)
                failed = await RuleRun.filter(id=run.id, status=RunStatus.running, attempts=run.attempts).update(
                    status=RunStatus.failed, finished_at=now, lease_until=None, error=error,
                )
                if failed:
                    run.status = RunStatus.failed
                    await run_event(run, RunStatus.failed, error=error)
                    await advance_lane(run)
            else:
                requeue.append(run)
        lease_until = await queued_lease_until(now, joining=sum(r.status == RunStatus.running for r in requeue))
        for run in requeue:
            why = "the process running it stopped" if orphaned else "its lease expired"
            taken = await RuleRun.filter(id=run.id, status=run.status, attempts=run.attempts).update(
                status=RunStatus.queued, lease_until=lease_until,
                reason=f"re-sent: attempt {run.attempts} was lost ({why})" if run.status == RunStatus.running else run.reason,
            )
            if taken:
                recovered.append(run.id)
    return len(expired), expired[-1].id
