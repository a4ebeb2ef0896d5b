"""Paused rules: their runs that fall due wait, with the reason shown, until the rule is resumed; a rule
whose last runs all failed pauses itself and tells the admins."""

from datetime import datetime

from tortoise.expressions import Q, Subquery

from server import clock
from server.config import settings
from server.kinds import RunStatus
from server.models import Rule, RuleRun
from server.rules import dispatch, notifications

# Runs that count for "failed N times in a row": finished by acting (a cancelled run did not try).
TRIED = (RunStatus.succeeded, RunStatus.failed, RunStatus.skipped, RunStatus.stopped)


def paused() -> Subquery:
    """The ids of paused rules, as a subquery of the claim's own statement."""
    return Subquery(Rule.filter(paused_at__not_isnull=True).values("id"))


def when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


async def paused_rule_ids() -> list[int]:
    return [rule.id for rule in await Rule.filter(paused_at__not_isnull=True).only("id")]


async def hold(paused: list[int], now: datetime) -> None:
    """Due runs of paused rules are not claimed: say why they wait (once per run, not on every poll)."""
    for rule in await Rule.filter(id__in=paused).only("id", "pause_reason"):
        await RuleRun.filter(Q(reason__isnull=True) | ~Q(reason=rule.pause_reason), rule_id=rule.id,
                             status=RunStatus.scheduled, due_at__lte=now).update(reason=rule.pause_reason)


async def pause(rule: Rule, *, reason: str, by_id: int | None) -> bool:
    """Pause `rule` (compare-and-set: False if it was paused already). Call inside a transaction."""
    now = clock.utcnow()
    taken = await Rule.filter(id=rule.id, paused_at__isnull=True).update(paused_at=now, paused_by_id=by_id,
                                                                        pause_reason=reason)
    if taken:
        rule.paused_at, rule.paused_by_id, rule.pause_reason = now, by_id, reason
        await hold([rule.id], now)
    return bool(taken)


async def resume(rule: Rule) -> int:
    """Resume `rule`: the runs that waited for it go now. Returns how many were waiting."""
    now = clock.utcnow()
    taken = await Rule.filter(id=rule.id, paused_at__not_isnull=True).update(
        paused_at=None, paused_by_id=None, pause_reason=None, resumed_at=now)
    if not taken:
        return 0
    waiting = RuleRun.filter(rule_id=rule.id, status=RunStatus.scheduled, reason=rule.pause_reason)
    ids = [run.id for run in await waiting.only("id")]
    await RuleRun.filter(id__in=ids).update(reason="waited while the rule was paused")
    await rule.refresh_from_db()
    due = [run.id for run in await RuleRun.filter(id__in=ids, due_at__lte=now).only("id")]
    dispatch.RUNS.now(due)
    return len(ids)


async def after_failure(run: RuleRun, error: str) -> None:
    """`run` just failed: if the rule's last N tried runs (since it was last resumed) all failed, pause it and
    notify the admins. Call inside the failure's transaction."""
    limit = settings().pause_after_failures
    if limit <= 0:
        return
    rule = await Rule.get_or_none(id=run.rule_id)
    if rule is None or rule.paused_at is not None:
        return
    query = RuleRun.filter(rule_id=rule.id, status__in=TRIED)
    if rule.resumed_at is not None:
        query = query.filter(finished_at__gte=rule.resumed_at)
    last = await query.order_by("-finished_at", "-id").limit(limit).only("id", "status")
    if len(last) < limit or any(r.status != RunStatus.failed for r in last):
        return
    now = clock.utcnow()
    reason = (f"rule paused automatically at {when(now)}: its last {limit} runs failed "
              f"(last error: {error[:200]})")
    if await pause(rule, reason=reason, by_id=None):
        text = (f"Rule “{rule.title}” paused itself after {limit} failures in a row "
                f"(last error: {error[:200]}). Fix it, then resume it on its page.")
        await notifications.notify(await notifications.audience(roles=["admin"]), text,
                                   element_type=run.element_type, element_id=run.element_id, rule_run_id=run.id)
