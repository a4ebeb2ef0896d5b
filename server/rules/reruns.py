"""Re-runs of failed runs and backfills of a rule onto the elements already in its stage: new runs of the
rule as it is now, through the normal dispatch, made due in batches behind live work.

A failed run is not reset: a new run is made, and the failed one records it (`rerun_as_id`, set once by
compare-and-set, so a failed run is re-run once however often it is asked). The failed run keeps its log,
and the attempt counter that fences a lost worker's late outcome never goes back.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from server import clock
from server.config import settings
from server.db import transaction
from server.kinds import RunStatus, StageRunStatus
from server.models import RuleRun, Stage, StageRun
from server.rules import dispatch, revisions
from server.rules.engine import FOLLOWED, run_event

PAGE = 500  # runs made per transaction


class Stale(Exception):
    """A failed run was re-run meanwhile by someone else: this batch rolls back."""


@dataclass(frozen=True)
class Made:
    count: int
    first_due_at: datetime | None
    last_due_at: datetime | None


async def rule_in_force(stage_id: int, rule_id: int) -> tuple[int, dict[str, Any] | None]:
    """The rule as the stage's revision in force has it (None if that revision has no such rule)."""
    revision, rules = await revisions.rules_in_force(await Stage.get(id=stage_id))
    return revision, next((r for r in rules if r["id"] == rule_id), None)


async def _start(now: datetime) -> datetime:
    """Where a new batch goes: after the re-runs and backfills already waiting (theirs is the `revision`
    column), so two requests share the rate instead of doubling it."""
    latest = await RuleRun.filter(status=RunStatus.scheduled, revision__not_isnull=True,
                                  due_at__not_isnull=True).order_by("-due_at").first().only("id", "due_at")
    last = latest.due_at if latest is not None else None
    interval = timedelta(milliseconds=settings().rerun_interval_ms)
    return max(now, last + interval) if last is not None else now


def due_times(start: datetime, count: int) -> list[datetime]:
    config = settings()
    batch = max(1, config.rerun_batch)
    return [start + timedelta(milliseconds=config.rerun_interval_ms * (i // batch)) for i in range(count)]


async def _make(stage_run: StageRun, spec: dict[str, Any], revision: int, due_at: datetime, reason: str,
                lane: int) -> RuleRun:
    run = await RuleRun.create(
        stage_run_id=stage_run.id, element_type=stage_run.element_type, element_id=stage_run.element_id,
        rule_id=spec["id"], rule_key=spec["key"], action_type=spec["action_type"], title=spec["title"],
        position=spec["position"], lane=lane, spec={**spec, FOLLOWED: False}, status=RunStatus.scheduled,
        due_at=due_at, reason=reason, revision=revision,
    )
    await run_event(run, RunStatus.scheduled)
    return run


async def rerun(failed: Sequence[RuleRun], *, spec: dict[str, Any], revision: int, reason: str) -> Made:
    """A new run for each of `failed` (same rule, same stay), `PAGE` per transaction. Raises `Stale` if one
    was re-run meanwhile (that page rolls back)."""
    times = due_times(await _start(clock.utcnow()), len(failed))
    for offset in range(0, len(failed), PAGE):
        page = failed[offset: offset + PAGE]
        due_now: list[int] = []
        async with transaction():
            stays = {s.id: s for s in await StageRun.filter(id__in=[r.stage_run_id for r in page])}
            for run, due_at in zip(page, times[offset: offset + PAGE], strict=True):
                new = await _make(stays[run.stage_run_id], spec, revision, due_at, f"{reason} (of run {run.id})",
                                  run.lane)
                if not await RuleRun.filter(id=run.id, status=RunStatus.failed, rerun_as_id=None).update(
                        rerun_as_id=new.id):
                    raise Stale(f"run {run.id} was re-run meanwhile")
                if due_at <= clock.utcnow():
                    due_now.append(new.id)
            dispatch.RUNS.now(due_now)
    return Made(len(failed), times[0] if times else None, times[-1] if times else None)


async def backfill(stays: Sequence[StageRun], *, spec: dict[str, Any], revision: int, reason: str) -> Made:
    """A run of the rule for each of `stays` (active stays in its stage that have none), `PAGE` per
    transaction."""
    times = due_times(await _start(clock.utcnow()), len(stays))
    made = 0
    for offset in range(0, len(stays), PAGE):
        due_now: list[int] = []
        async with transaction():
            for stay, due_at in zip(stays[offset: offset + PAGE], times[offset: offset + PAGE], strict=True):
                still = await StageRun.filter(id=stay.id, status=StageRunStatus.active).exists()
                if not still or await RuleRun.filter(stage_run_id=stay.id, rule_id=spec["id"]).exists():
                    continue  # left the stage, or the rule ran there meanwhile
                new = await _make(stay, spec, revision, due_at, reason, lane=0)
                made += 1
                if due_at <= clock.utcnow():
                    due_now.append(new.id)
            dispatch.RUNS.now(due_now)
    return Made(made, times[0] if times else None, times[-1] if times else None)
