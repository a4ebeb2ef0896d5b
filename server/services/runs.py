"""The run log across elements: filter rule runs by status, rule, stage, element and time."""

from datetime import datetime

from tortoise.expressions import Q, Subquery

from server.errors import ValidationFailed
from server.kinds import ElementType, RunStatus
from server.models import Deal, Lead, RuleRun, StageRun
from server.rules.engine import UNFINISHED as UNFINISHED  # runs not over yet: the admin polls while any is
from server.services.access import Acting, Actor
from server.services.paging import Slice, keyset

STATUSES = tuple(RunStatus)


async def list_rule_runs(
    *, statuses: list[str] | None = None, rule_id: int | None = None, stage_id: int | None = None,
    element_type: str | None = None, element_id: int | None = None,
    created_after: datetime | None = None, created_before: datetime | None = None,
    first: int = 50, after: int | None = None, oldest_first: bool = False, actor: Acting,
) -> Slice:
    """Newest first (or oldest first). Employees see the runs of the leads and deals they are responsible for."""
    bad = [s for s in statuses or [] if s not in STATUSES]
    if bad:
        raise ValidationFailed.one("status", f"unknown status {bad[0]!r}; one of {', '.join(STATUSES)}")
    query = RuleRun.all()
    if statuses:
        query = query.filter(status__in=statuses)
    if rule_id is not None:
        query = query.filter(rule_id=rule_id)
    if stage_id is not None:
        query = query.filter(stage_run_id__in=Subquery(StageRun.filter(stage_id=stage_id).values("id")))
    if element_type is not None:
        query = query.filter(element_type=element_type)
    if element_id is not None:
        query = query.filter(element_id=element_id)
    if created_after is not None:
        query = query.filter(created_at__gte=created_after)
    if created_before is not None:
        query = query.filter(created_at__lt=created_before)
    if isinstance(actor, Actor) and not actor.sees_all_elements:
        mine_deals = Subquery(Deal.filter(responsible_id=actor.user_id).values("id"))
        mine_leads = Subquery(Lead.filter(responsible_id=actor.user_id).values("id"))
        query = query.filter(
            Q(element_type=ElementType.deal, element_id__in=mine_deals)
            | Q(element_type=ElementType.lead, element_id__in=mine_leads)
        )
    return await keyset(query, first=first, after=after, newest_first=not oldest_first)
