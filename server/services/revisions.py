"""A stage's history: its revisions, the diff between two of them, and rolling back to an old one.

A rollback is a new revision equal to the old one: rules and triggers come back as they were (a deleted one
with its old id, so the run log still names it). Runs already made keep the rule as their revision had it.
"""

import secrets
from typing import Any

from server.db import transaction
from server.errors import NotFound, ValidationFailed
from server.models import Rule, Stage, StageRevision, Trigger, User
from server.rules import revisions
from server.rules.triggers.base import WEBHOOK
from server.services.access import Acting, require_admin
from server.services.paging import MAX_PAGE, page_size

RULE_COLUMNS = ("key", "title", "position", "lane", "action_type", "params", "condition", "timing", "run_as_id",
                "enabled", "stop_lane_on_failure")
TRIGGER_COLUMNS = ("name", "trigger_type", "settings", "condition", "allow_back", "run_as_id", "position", "enabled")


async def _stage(stage_id: int) -> Stage:
    stage = await Stage.get_or_none(id=stage_id)
    if stage is None:
        raise NotFound("stage", stage_id)
    return stage


async def stage_revisions(stage_id: int, *, actor: Acting, first: int = MAX_PAGE,
                          before: int | None = None) -> list[StageRevision]:
    """Newest first: at most `first`, older than revision `before` if given (the next page)."""
    require_admin(actor)
    await _stage(stage_id)
    query = StageRevision.filter(stage_id=stage_id)
    if before is not None:
        query = query.filter(number__lt=before)
    return await query.order_by("-number").limit(page_size(first))


async def get_revision(stage_id: int, number: int, *, field: str = "revision") -> StageRevision:
    revision = await StageRevision.get_or_none(stage_id=stage_id, number=number)
    if revision is None:
        raise ValidationFailed.one(field, f"stage {stage_id} has no revision {number}")
    return revision


async def revision_diff(stage_id: int, older: int, newer: int, *, actor: Acting) -> revisions.Diff:
    require_admin(actor)
    await _stage(stage_id)
    return revisions.diff(await get_revision(stage_id, older, field="from"),
                          await get_revision(stage_id, newer, field="to"))


async def authors(revisions_: list[StageRevision]) -> dict[int, str]:
    ids = {r.author_id for r in revisions_ if r.author_id is not None}
    return {u.id: u.name for u in await User.filter(id__in=ids)} if ids else {}


async def rollback_stage(stage_id: int, to_revision: int, *, actor: Acting) -> StageRevision:
    """Bring back the rules and triggers of `to_revision` as the stage's next revision."""
    require_admin(actor)
    stage = await _stage(stage_id)
    target = await get_revision(stage_id, to_revision, field="to_revision")
    if to_revision == stage.revision:
        raise ValidationFailed.one("to_revision", f"revision {to_revision} is already the one in force")
    async with transaction():
        await _restore_rules(stage_id, target.rules)
        if target.triggers is not None:
            await _restore_triggers(stage_id, target.triggers)
        note = f"rolled back to revision {to_revision}"
        if target.triggers is None:
            note += " (its triggers were not recorded: they stay as they are)"
        return await revisions.record(stage_id, author_id=actor.user_id, note=note)


async def _restore_rules(stage_id: int, wanted: list[dict[str, Any]]) -> None:
    keep = {item["id"] for item in wanted}
    await Rule.filter(stage_id=stage_id).exclude(id__in=keep).delete()
    current = {rule.id: rule for rule in await Rule.filter(stage_id=stage_id)}
    for rule in current.values():  # keys are unique per stage: free them before any is given back
        await Rule.filter(id=rule.id).update(key=f"_rollback_{rule.id}")
    for item in wanted:
        values = {name: item.get(name) for name in RULE_COLUMNS}
        if item["id"] in current:
            await Rule.filter(id=item["id"]).update(**values)
        else:
            await Rule.create(id=item["id"], stage_id=stage_id, **values)


async def _restore_triggers(stage_id: int, wanted: list[dict[str, Any]]) -> None:
    keep = {item["id"] for item in wanted}
    await Trigger.filter(stage_id=stage_id).exclude(id__in=keep).delete()
    current = {trigger.id: trigger for trigger in await Trigger.filter(stage_id=stage_id)}
    for item in wanted:
        values = {name: item.get(name) for name in TRIGGER_COLUMNS}
        existing = current.get(item["id"])
        token = existing.token if existing is not None else None
        if values["trigger_type"] == WEBHOOK and token is None:
            token = secrets.token_urlsafe(24)  # a trigger brought back gets a new secret URL
        elif values["trigger_type"] != WEBHOOK:
            token = None
        if existing is not None:
            await Trigger.filter(id=item["id"]).update(token=token, **values)
        else:
            await Trigger.create(id=item["id"], stage_id=stage_id, token=token, **values)
