"""Re-running failed runs, backfilling a rule onto the elements already in its stage, pausing and resuming a
rule: what the API and the admin call. Bulk requests count first; they schedule only when confirmed."""

from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from server import clock
from server.db import transaction
from server.errors import NotFound, ValidationFailed
from server.kinds import RunStatus, StageRunStatus
from server.models import Rule, RuleRun, StageRun, User
from server.rules import pausing, reruns
from server.services.access import Acting, require_admin


@dataclass(frozen=True)
class FailedFilter:
    """Which failed runs of a rule: finished in [failed_after, failed_before), error text containing a phrase."""

    failed_after: datetime | None = None
    failed_before: datetime | None = None
    error_contains: str | None = None


@dataclass(frozen=True)
class Plan:
    """How many runs a bulk request covers, and (once confirmed) when the first and last of them are due."""

    count: int
    scheduled: bool
    first_due_at: datetime | None = None
    last_due_at: datetime | None = None


async def _rule(rule_id: int) -> Rule:
    rule = await Rule.get_or_none(id=rule_id)
    if rule is None:
        raise NotFound("rule", rule_id)
    return rule


async def _spec(rule: Rule) -> tuple[int, dict[str, object]]:
    revision, spec = await reruns.rule_in_force(rule.stage_id, rule.id)
    if spec is None:
        raise ValidationFailed.one("rule_id", f"rule {rule.id} is not in the revision in force of its stage")
    return revision, spec


async def _by(actor: Acting) -> str:
    user = await User.get_or_none(id=actor.user_id) if actor.user_id is not None else None
    return user.name if user is not None else "the system"


def _confirmed(count: int, confirm: bool, expected: int | None) -> bool:
    if not confirm:
        return False
    if expected is not None and expected != count:
        raise ValidationFailed.one("expected_count", f"the count changed: {count} now, not {expected}; confirm again")
    return True


async def rerun_run(run_id: int, *, actor: Acting) -> RuleRun:
    """A new run of a failed run's rule, for the same stay, as the rule is now."""
    require_admin(actor)
    run = await RuleRun.get_or_none(id=run_id)
    if run is None:
        raise NotFound("rule run", run_id)
    if run.status != RunStatus.failed:
        raise ValidationFailed.one("run_id", f"run {run_id} is {run.status}: only a failed run can be re-run")
    if run.rerun_as_id is not None:
        raise ValidationFailed.one("run_id", f"run {run_id} was re-run already, as run {run.rerun_as_id}")
    if not await StageRun.filter(id=run.stage_run_id, status=StageRunStatus.active).exists():
        raise ValidationFailed.one("run_id", f"the element of run {run_id} has left the stage: nothing to re-run")
    revision, spec = await _spec(await _rule(run.rule_id))
    try:
        await reruns.rerun([run], spec=spec, revision=revision, reason=f"re-run by {await _by(actor)}")
    except reruns.Stale as exc:
        raise ValidationFailed.one("run_id", f"run {run_id} was re-run already") from exc
    await run.refresh_from_db()
    assert run.rerun_as_id is not None
    return await RuleRun.get(id=run.rerun_as_id)


def _failed(rule: Rule, where: FailedFilter) -> QuerySet[RuleRun]:
    query = RuleRun.filter(rule_id=rule.id, status=RunStatus.failed, rerun_as_id=None,
                           stage_run__status=StageRunStatus.active)
    if where.failed_after is not None:
        query = query.filter(finished_at__gte=where.failed_after)
    if where.failed_before is not None:
        query = query.filter(finished_at__lt=where.failed_before)
    if where.error_contains:
        query = query.filter(error__icontains=where.error_contains)
    return query.order_by("id")


async def rerun_failed_runs(rule_id: int, where: FailedFilter, *, confirm: bool, expected: int | None = None,
                            actor: Acting) -> Plan:
    """Count the failed runs of a rule the filter names (their element still in the stage, not re-run yet);
    with `confirm`, re-run them all, a batch at a time."""
    require_admin(actor)
    rule = await _rule(rule_id)
    if where.failed_after and where.failed_before and where.failed_after >= where.failed_before:
        raise ValidationFailed.one("filter.failed_before", "must be later than failed_after")
    query = _failed(rule, where)
    count = await query.count()
    if not _confirmed(count, confirm, expected):
        return Plan(count, scheduled=False)
    revision, spec = await _spec(rule)
    failed = await query
    try:
        made = await reruns.rerun(failed, spec=spec, revision=revision, reason=f"re-run by {await _by(actor)}")
    except reruns.Stale as exc:
        raise ValidationFailed.one("rule_id", f"{exc}: count again") from exc
    return Plan(made.count, scheduled=True, first_due_at=made.first_due_at, last_due_at=made.last_due_at)


async def backfill_rule(rule_id: int, *, confirm: bool, expected: int | None = None, actor: Acting) -> Plan:
    """Count the elements in the rule's stage the rule has not run for (they entered before it existed, or
    while it was disabled); with `confirm`, run it for each of them, a batch at a time."""
    require_admin(actor)
    rule = await _rule(rule_id)
    revision, spec = await _spec(rule)
    stays = await StageRun.filter(stage_id=rule.stage_id, status=StageRunStatus.active).exclude(
        id__in=Subquery(RuleRun.filter(rule_id=rule.id).values("stage_run_id"))).order_by("id")
    if not _confirmed(len(stays), confirm, expected):
        return Plan(len(stays), scheduled=False)
    made = await reruns.backfill(stays, spec=spec, revision=revision, reason=f"backfill by {await _by(actor)}")
    return Plan(made.count, scheduled=True, first_due_at=made.first_due_at, last_due_at=made.last_due_at)


async def pause_rule(rule_id: int, *, actor: Acting) -> Rule:
    require_admin(actor)
    rule = await _rule(rule_id)
    if rule.paused_at is not None:
        raise ValidationFailed.one("rule_id", f"rule “{rule.title}” is paused already: {rule.pause_reason}")
    reason = f"rule paused by {await _by(actor)} at {pausing.when(clock.utcnow())}"
    async with transaction():
        await pausing.pause(rule, reason=reason, by_id=actor.user_id)
    return rule


async def resume_rule(rule_id: int, *, actor: Acting) -> Rule:
    require_admin(actor)
    rule = await _rule(rule_id)
    if rule.paused_at is None:
        raise ValidationFailed.one("rule_id", f"rule “{rule.title}” is not paused")
    async with transaction():
        await pausing.resume(rule)
    return rule
