"""Leads and deals: create, change, move, delete, list; customer activity and tasks that end waits."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from server import clock
from server.db import transaction
from server.errors import FieldError, Forbidden, NotFound, ValidationFailed
from server.models import (
    AuditEntry,
    CustomerActivity,
    CustomField,
    DealContact,
    Element,
    RuleRun,
    Stage,
    StageRun,
    Task,
    TimelineEntry,
    model_for,
)
from server.rules import elements, engine
from server.rules.metadata import METADATA
from server.rules.actions.base import CUSTOMER_ACTIVITY
from server.rules.triggering import Event, Occurrence
from server.rules.triggers.base import TASK_STATUS_CHANGED
from server.services.access import Acting, Actor, SystemActor, can_see_element, element_scope, require_element, visible_clients
from server.services.paging import Slice, keyset, oldest_first

ACTIVITY_KINDS = ("email", "call", "message", "form")
MAX_DEAL_CONTACTS = 20


async def _stage_for(element_type: str, stage_id: int | None, pipeline_id: int | None, *, field: str) -> Stage:
    if stage_id is not None:
        stage = await METADATA.stage(stage_id)
        if stage is None:
            raise ValidationFailed.one(field, f"stage {stage_id} does not exist")
        if stage.pipeline.entity_type != element_type:
            raise ValidationFailed.one(field, f"stage {stage_id} belongs to a {stage.pipeline.entity_type} pipeline")
        return stage
    pipelines = await METADATA.pipelines(element_type)
    pipeline = next((p for p in pipelines if p.id == pipeline_id), None) if pipeline_id else next(iter(pipelines), None)
    if pipeline is None:
        raise ValidationFailed.one("pipeline_id", f"no {element_type} pipeline to put it in")
    stages = await METADATA.pipeline_stages(pipeline.id)
    if not stages:
        raise ValidationFailed.one("pipeline_id", f"pipeline '{pipeline.name}' has no stages")
    return stages[0]


async def create_element(
    element_type: str,
    fields: dict[str, Any],
    *,
    stage_id: int | None = None,
    pipeline_id: int | None = None,
    contact_ids: list[int] | None = None,
    actor: Acting,
) -> Element:
    """Create a lead or deal in a stage (default: the first stage of the default pipeline); its rules start.

    The responsible defaults to the creating user; an employee may only create what they are responsible for.
    """
    model = model_for(element_type)
    actor_id = actor.user_id
    if not (fields.get("title") or "").strip():
        raise ValidationFailed.one("fields.title", "give it a title")
    async with transaction():  # one unit of work: the stage metadata's marker is read once, for all of it
        changes = await elements.coerce_changes(element_type, fields)
        stage = await _stage_for(element_type, stage_id, pipeline_id, field="stage_id")
        contact_ids = contact_ids or []
        await _require_linkable(actor, changes, contact_ids)
        builtin = elements.BUILTIN_FIELDS[element_type]
        columns = {(f"{k}_id" if k in elements.RELATIONS else k): v
                   for k, v in changes.items() if k in builtin and v is not None}
        custom = {k: elements.to_json(v) for k, v in changes.items() if k not in builtin}
        if "responsible_id" not in columns and actor_id is not None:
            columns["responsible_id"] = actor_id
        if isinstance(actor, Actor) and not actor.sees_all_elements and columns.get("responsible_id") != actor.user_id:
            raise Forbidden("employees may only create leads and deals they are responsible for")
        element = await model.create(pipeline_id=stage.pipeline_id, stage_id=stage.id, custom=custom, **columns)
        for position, contact_id in enumerate(contact_ids):
            await DealContact.create(deal_id=element.id, contact_id=contact_id, position=position)
        await elements.element_event(element_type, element, "created", actor_id=actor_id)
        await engine.enter_stage(element_type, element, stage, reason="created", actor_id=actor_id)
    return element


async def _require_linkable(actor: Acting, changes: dict[str, Any], contact_ids: Sequence[int] = ()) -> None:
    """Linking a contact or company needs the right to see it (access.visible_clients). A client that
    does not exist and one the actor may not see get the same message, so ids reveal nothing."""
    if len(contact_ids) > MAX_DEAL_CONTACTS:
        raise ValidationFailed.one("contact_ids", f"at most {MAX_DEAL_CONTACTS} contacts per deal")
    errors = [FieldError(f"contact_ids.{index}", f"contact {ident} is listed twice")
              for index, ident in enumerate(contact_ids) if ident in contact_ids[:index]]
    wanted = {("contact", f"contact_ids.{index}", ident) for index, ident in enumerate(contact_ids)}
    wanted |= {(kind, f"fields.{kind}", changes[kind]) for kind in ("contact", "company") if changes.get(kind)}
    for kind in ("contact", "company"):
        ids = {ident for k, _, ident in wanted if k == kind}
        visible = await visible_clients(actor, kind, ids)
        errors += [FieldError(field, elements.missing_reference(kind, ident))
                   for k, field, ident in sorted(wanted, key=lambda w: w[1]) if k == kind and ident not in visible]
    if errors:
        raise ValidationFailed(errors)


@dataclass(frozen=True)
class EditableField:
    """A field of a lead or deal as a form shows it: its code, label, type (rules/elements.coerce_value's
    words: string, text, money, number, currency, bool, date, datetime, select, user, contact, company) and
    its choices for a select."""

    code: str
    label: str
    type: str
    options: list[Any]
    custom: bool


READ_ONLY_TYPES = ("booking",)  # set through their own actions, not a field form


async def editable_fields(element_type: str) -> list[EditableField]:
    """Every field a person may change on a lead or deal, built-in first, then custom ones by name."""
    builtin = elements.BUILTIN_FIELDS[element_type]
    names = {c.code: c.name for c in await CustomField.filter(entity_type=element_type)}
    found = [EditableField(code, names.get(code) or code.replace("_", " ").capitalize(), kind, options,
                           code not in builtin)
             for code, (kind, options) in (await elements.field_types(element_type)).items()
             if kind not in READ_ONLY_TYPES]
    return sorted(found, key=lambda f: (f.custom, 0 if f.code == "title" else 1, f.label.lower() if f.custom else ""))


async def get_element(element_type: str, element_id: int, *, actor: Acting) -> Element:
    element = await elements.load(element_type, element_id)
    require_element(actor, element)
    return element


async def require_visible(actor: Acting, element_type: str, element_id: int) -> None:
    """For logs that outlive their element: managers and admins see all, employees what they are responsible for."""
    model = model_for(element_type)  # `offer` is refused for everyone, not read as an empty log
    if isinstance(actor, SystemActor) or actor.sees_all_elements:
        return
    element = await model.get_or_none(id=element_id).only("id", "responsible_id")
    if element is None or not can_see_element(actor, element):
        raise Forbidden("you may only see and change leads and deals you are responsible for")


async def update_element(
    element_type: str, element_id: int, fields: dict[str, Any], *, actor: Acting
) -> Element:
    changes = await elements.coerce_changes(element_type, fields)
    async with transaction():
        element = await elements.load(element_type, element_id, lock=True)
        require_element(actor, element)
        await _require_linkable(actor, changes)
        changed = await elements.apply_changes(element_type, element, changes, actor_id=actor.user_id)
        await engine.element_changed(element_type, element, changed)
    return element


async def move_element(element_type: str, element_id: int, stage_id: int, *, actor: Acting) -> Element:
    """Move to another stage of the same pipeline: the old stage's pending runs are cancelled."""
    async with transaction():
        element = await elements.load(element_type, element_id, lock=True)
        require_element(actor, element)
        stage = await _stage_for(element_type, stage_id, None, field="stage_id")
        if stage.pipeline_id != element.pipeline_id:
            raise ValidationFailed.one("stage_id", "the stage must be in the element's pipeline")
        if stage.id == element.stage_id:
            raise ValidationFailed.one("stage_id", f"the {element_type} is already in stage '{stage.name}'")
        await engine.enter_stage(element_type, element, stage, reason="moved", actor_id=actor.user_id)
    return element


async def delete_element(element_type: str, element_id: int, *, actor: Acting) -> None:
    """Delete a lead or deal: its pending runs are cancelled; timeline and run log are kept."""
    async with transaction():
        element = await elements.load(element_type, element_id, lock=True)
        require_element(actor, element)
        await engine.cancel_element_runs(element_type, element_id, reason=f"the {element_type} was deleted")
        await elements.element_event(element_type, element, "deleted", actor_id=actor.user_id)
        await element.delete()


async def list_elements(
    element_type: str, *, pipeline_id: int | None = None, stage_id: int | None = None,
    responsible_id: int | None = None, search: str | None = None, first: int = 50, after: int | None = None,
    actor: Acting,
) -> Slice:
    """Newest first, in pages of `first` after the element id `after`; employees see their own only."""
    query = model_for(element_type).filter(**element_scope(actor))
    if pipeline_id is not None:
        query = query.filter(pipeline_id=pipeline_id)
    if stage_id is not None:
        query = query.filter(stage_id=stage_id)
    if responsible_id is not None:
        query = query.filter(responsible_id=responsible_id)
    if search:
        query = query.filter(title__icontains=search)
    return await keyset(query, first=first, after=after)


async def rule_runs(
    element_type: str, element_id: int, *, stage_run_id: int | None = None, actor: Acting
) -> list[RuleRun]:
    await require_visible(actor, element_type, element_id)
    query = RuleRun.filter(element_type=element_type, element_id=element_id)
    if stage_run_id is not None:
        query = query.filter(stage_run_id=stage_run_id)
    return await query.order_by("stage_run_id", "position", "id")


# An element's logs are read oldest first, after the id `after`: at most `first` (≤ MAX_PAGE) rows for API
# clients; the admin's element page (first=None) shows them whole.


async def timeline(element_type: str, element_id: int, *, actor: Acting, first: int | None = None,
                   after: int | None = None) -> list[TimelineEntry]:
    """Comments, history and automation entries, oldest first; kept after the element is deleted."""
    await require_visible(actor, element_type, element_id)
    query = TimelineEntry.filter(element_type=element_type, element_id=element_id)
    return await oldest_first(query, first=first, after=after)


async def audit_trail(element_type: str, element_id: int, *, actor: Acting, first: int | None = None,
                      after: int | None = None) -> list[AuditEntry]:
    """Every field and stage change, oldest first, with the user or rule run that made it."""
    await require_visible(actor, element_type, element_id)
    query = AuditEntry.filter(element_type=element_type, element_id=element_id)
    return await oldest_first(query, first=first, after=after)


async def stage_runs(element_type: str, element_id: int, *, actor: Acting, first: int | None = None,
                     after: int | None = None) -> list[StageRun]:
    await require_visible(actor, element_type, element_id)
    query = StageRun.filter(element_type=element_type, element_id=element_id)
    return await oldest_first(query, first=first, after=after)


async def tasks(element_type: str, element_id: int, *, actor: Acting, first: int | None = None,
                after: int | None = None) -> list[Task]:
    await require_visible(actor, element_type, element_id)
    query = Task.filter(element_type=element_type, element_id=element_id)
    return await oldest_first(query, first=first, after=after)


async def open_tasks_for_user(user_id: int, *, actor: Acting, limit: int = 200) -> list[Task]:
    """A user's open tasks (they are responsible or a participant), by deadline, those without one last.
    Users see their own; managers and admins anyone's."""
    if isinstance(actor, Actor) and actor.user_id != user_id and not actor.sees_all_elements:
        raise Forbidden("you may only see your own tasks")
    responsible = await Task.filter(status="open", responsible_id=user_id).order_by("deadline", "id").limit(limit)
    # participants is a JSON list: few open tasks per instance, so they are read and filtered here
    shared = [t for t in await Task.filter(status="open").exclude(responsible_id=user_id).limit(10 * limit)
              if user_id in (t.participants or [])]
    found = responsible + shared[: max(0, limit - len(responsible))]
    return sorted(found, key=lambda t: (t.deadline is None, t.deadline or t.created_at, t.id))


async def record_customer_activity(
    element_type: str, element_id: int, *, kind: str, text: str = "", actor: Acting
) -> CustomerActivity:
    """Inbound customer activity: stored, and every Wait rule on the element ends."""
    if kind not in ACTIVITY_KINDS:
        raise ValidationFailed.one("kind", f"must be one of {', '.join(ACTIVITY_KINDS)}")
    async with transaction():
        require_element(actor, await elements.load(element_type, element_id))
        activity = await CustomerActivity.create(element_type=element_type, element_id=element_id, kind=kind, text=text)
        for run in await engine.waiting_runs(element_type, element_id, CUSTOMER_ACTIVITY):
            await engine.release_waiting(run, ended_by="activity", outputs={"activity": kind})
    return activity


async def close_task(task_id: int, *, actor: Acting) -> Task:
    """Close a task (its responsible, or whoever may work on its element); a Task rule waiting for it goes on."""
    async with transaction():
        task = await Task.get_or_none(id=task_id)
        if task is None:
            raise NotFound("task", task_id)
        if isinstance(actor, Actor) and task.responsible_id != actor.user_id and task.element_type and task.element_id:
            await require_visible(actor, task.element_type, task.element_id)
        elif isinstance(actor, Actor) and task.responsible_id != actor.user_id and not actor.sees_all_elements:
            raise Forbidden("only the task's responsible may close it")
        if task.status == "closed":
            raise ValidationFailed([FieldError("task_id", "the task is already closed")])
        old_status = task.status
        task.status = "closed"
        task.closed_at = clock.utcnow()
        await task.save()
        # The rule waiting for this task goes on first: it got what it waited for, even when a trigger below
        # then moves the element on (the demo's "Contract task closed"), which would otherwise cancel it.
        if task.rule_run_id is not None:
            run = await RuleRun.get_or_none(id=task.rule_run_id, status="waiting")
            if run is not None:
                await engine.release_waiting(run, ended_by="task closed", outputs={"closed_at": task.closed_at.isoformat()})
        if task.element_type and task.element_id:
            await engine.fire_triggers(Occurrence(
                Event(TASK_STATUS_CHANGED, {"task_id": task.id, "title": task.title, "status": "closed",
                                            "old_status": old_status}),
                element_type=task.element_type, element_id=task.element_id))
    return task


async def add_comment(element_type: str, element_id: int, text: str, *, actor: Acting) -> TimelineEntry:
    """A user's comment on a lead or deal's timeline."""
    text = text.strip()
    if not text:
        raise ValidationFailed.one("text", "write something to comment")
    if len(text) > 20_000:
        raise ValidationFailed.one("text", "must be at most 20000 characters")
    async with transaction():
        require_element(actor, await elements.load(element_type, element_id))
        return await elements.add_timeline_entry(element_type, element_id, "comment", text, author_id=actor.user_id)


async def get_timeline_entry(entry_id: int, *, actor: Acting) -> TimelineEntry:
    """One entry of a timeline, for whoever may see the element's log (a retried comment's answer)."""
    entry = await TimelineEntry.get_or_none(id=entry_id)
    if entry is None:
        raise NotFound("timeline entry", entry_id)
    await require_visible(actor, entry.element_type, entry.element_id)
    return entry
