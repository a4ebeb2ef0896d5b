"""Claiming runs for execution: due runs, and runs whose lease expired (lost message, dead worker)."""

from datetime import timedelta
from typing import Any

from server import clock
from server.config import settings
from server.db import transaction
from server.kinds import RunStatus
from server.models import RuleRun
from server.rules.engine import advance_lane, run_event

# How long a queued run may wait for a worker before the sweeper sends it again.
QUEUED_LEASE_S = 30


async def _claim(query: Any, limit: int) -> list[int]:
    now = clock.utcnow()
    async with transaction():
        # `.only("id")`, not `values_list`: Tortoise drops FOR UPDATE from a values query.
        rows = await (
            query.filter(due_at__lte=now).order_by("due_at", "id").limit(limit)
            .select_for_update(skip_locked=True).only("id")
        )
        ids = [row.id for row in rows]
        if ids:
            await RuleRun.filter(id__in=ids, status__in=(RunStatus.scheduled, RunStatus.waiting)).update(
                status=RunStatus.queued, lease_until=now + timedelta(seconds=QUEUED_LEASE_S)
            )
    return ids


async def claim_due(*, limit: int = 200) -> list[int]:
    """Scheduled runs whose time has come, and blocked runs whose wait timed out → queued."""
    return await _claim(RuleRun.filter(status__in=(RunStatus.scheduled, RunStatus.waiting)), limit)


async def claim(run_ids: list[int]) -> list[int]:
    """Those of `run_ids` that are due now → queued (the fast path right after a commit)."""
    return await _claim(RuleRun.filter(id__in=run_ids, status=RunStatus.scheduled), len(run_ids))


async def recover_expired(*, limit: int = 500, orphaned: bool = False) -> list[int]:
    """Queued or running runs past their lease go back to queued, to be sent again.

    With `orphaned`, every queued or running run counts as expired: for a single process that
    starts up and knows no other worker can hold them (embedded mode after a crash).

    The attempt counter makes a slow worker that comes back lose its compare-and-set, so its
    effect rolls back; a run that loses its worker too often fails with the reason.
    """
    now = clock.utcnow()
    max_attempts = settings().max_attempts
    recovered: list[int] = []
    async with transaction():
        expired = await (
            RuleRun.filter(status__in=(RunStatus.queued, RunStatus.running),
                           **({} if orphaned else {"lease_until__lt": now}))
            .order_by("lease_until").limit(limit).select_for_update(skip_locked=True)
        )
        for run in expired:
            if run.status == RunStatus.running and run.attempts >= max_attempts:
                failed = await RuleRun.filter(id=run.id, status=RunStatus.running, attempts=run.attempts).update(
                    status=RunStatus.failed, finished_at=now, lease_until=None,
                    error=f"the worker running it was lost {run.attempts} times",
                )
                if failed:
                    run.status = RunStatus.failed
                    await run_event(run, RunStatus.failed, error=f"the worker running it was lost {run.attempts} times")
                    await advance_lane(run)
                continue
            taken = await RuleRun.filter(id=run.id, status=run.status, attempts=run.attempts).update(
                status=RunStatus.queued, lease_until=now + timedelta(seconds=QUEUED_LEASE_S),
                reason=f"re-sent: lease expired while {run.status}" if run.status == RunStatus.running else run.reason,
            )
            if taken:
                recovered.append(run.id)
    return recovered
