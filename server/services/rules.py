"""Saving a stage's rules: validated params, condition and timing; each change a revision."""

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from server.db import column, transaction
from server.errors import FieldError, NotFound, ValidationFailed, field_errors
from server.kinds import Lane
from server.models import Pipeline, Rule, Stage, User
from server.rules import elements, placeholders, revisions, templates
from server.rules.actions import get_action, registry
from server.rules.actions.base import template_texts
from server.rules.conditions import checked_condition
from server.rules.timing import Timing
from server.services.access import Acting, require_admin

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LANES = tuple(Lane)


@dataclass
class RuleInput:
    """A rule as a client submits it; fields left None keep their value on update."""

    action_type: str | None = None
    title: str | None = None
    key: str | None = None
    lane: str | None = None
    params: dict[str, Any] | None = None
    condition: list[list[dict[str, Any]]] | None = None
    timing: dict[str, Any] | None = None
    run_as_id: int | None = None
    clear_run_as: bool = False  # on update: act as the element's responsible again
    enabled: bool | None = None
    stop_lane_on_failure: bool | None = None
    position: int | None = None


async def _names(stage: Stage, rule: Rule | None, position: int | None) -> placeholders.Record:
    """What the rule's templates and condition may name: its element's fields and the outputs of the
    rules above it in the stage (where it is, or where `position` puts it), and the system values."""
    others = [r for r in await list_rules(stage.id) if rule is None or r.id != rule.id]
    if position is not None:
        above = others[: max(0, position)]
    elif rule is None:
        above = others  # a new rule goes last
    else:
        above = [r for r in others if (r.position, r.id) < (rule.position, rule.id)]
    pipeline = await Pipeline.get(id=stage.pipeline_id)
    outputs = [(r.key, action.outputs if (action := get_action(r.action_type)) else ()) for r in above]
    return await placeholders.run_context(pipeline.entity_type, outputs)


async def _validated(stage: Stage, values: dict[str, Any], *, rule: Rule | None = None,
                     position: int | None = None) -> dict[str, Any]:
    """Every problem with a rule, per field, before anything is written."""
    rule_id = rule.id if rule is not None else None
    names = await _names(stage, rule, position)
    errors: list[FieldError] = []
    action = get_action(values["action_type"] or "")
    if action is None:
        known = ", ".join(sorted(registry()))
        errors.append(FieldError("action_type", f"unknown action type '{values['action_type']}'; one of: {known}"))
    if not (values.get("title") or "").strip():
        errors.append(FieldError("title", "give the rule a title"))
    elif len(values["title"]) > 255:
        errors.append(FieldError("title", "must be at most 255 characters"))
    if values["lane"] not in LANES:
        errors.append(FieldError("lane", "must be 'parallel' or 'after_previous'"))
    if not KEY_PATTERN.match(values["key"] or ""):
        errors.append(FieldError("key", "must start with a letter and use only a-z, 0-9 and _"))
    elif await Rule.filter(stage_id=stage.id, key=values["key"]).exclude(id=rule_id or 0).exists():
        errors.append(FieldError("key", f"another rule of this stage already has the key '{values['key']}'"))
    if action is not None:
        try:
            params = action.Params.model_validate(values["params"] or {})
            values["params"] = params.model_dump(mode="json")
            errors += [FieldError(f"params.{f}" if f else "params", m) for f, m in await action.check(params, stage_id=stage.id)]
            for name, text in template_texts(params):
                try:
                    problems = templates.unknown_names(text, names)
                except ValueError:
                    continue  # a syntax error, reported by the params check already
                if problems:
                    errors.append(FieldError(f"params.{name}", "; ".join(problems)))
        except ValidationError as exc:
            errors += field_errors(exc, "params")
    try:
        timing = Timing.model_validate(values["timing"] or {})
        values["timing"] = timing.model_dump(mode="json", exclude_defaults=True)
        if timing.field and not await _is_date_field(stage, timing.field):
            errors.append(FieldError("timing.field", f"'{timing.field}' is not a date field of this pipeline's elements"))
    except ValidationError as exc:
        errors += field_errors(exc, "timing")
    values["condition"], condition_errors = checked_condition(values["condition"] or [], names)
    errors += condition_errors
    if values.get("run_as_id") is not None and not await User.exists(id=values["run_as_id"]):
        errors.append(FieldError("run_as_id", f"user {values['run_as_id']} does not exist"))
    if errors:
        raise ValidationFailed(errors)
    return values


async def _is_date_field(stage: Stage, name: str) -> bool:
    pipeline = await Pipeline.get(id=stage.pipeline_id)
    return name in await date_fields(pipeline.entity_type)


async def date_fields(entity_type: str) -> list[str]:
    """The fields a rule's timing may count from: when the element was created, and its date fields."""
    types = await elements.field_types(entity_type)
    return ["created_at", *[name for name, (field_type, _) in types.items() if field_type in ("date", "datetime")]]


async def names_for(stage_id: int, *, rule_id: int | None = None) -> placeholders.Record:
    """What the rule `rule_id` (None: a new rule, which goes last) may name where it stands today:
    the same names the save check accepts, for pickers that offer only what will be accepted."""
    stage = await _stage(stage_id)
    return await _names(stage, await get_rule(rule_id) if rule_id is not None else None, None)


async def _stage(stage_id: int) -> Stage:
    stage = await Stage.get_or_none(id=stage_id)
    if stage is None:
        raise NotFound("stage", stage_id)
    return stage


async def _unique_key(stage_id: int, base: str) -> str:
    taken: set[str] = set(await column(Rule.filter(stage_id=stage_id), "key"))
    n = 1
    while f"{base}{n}" in taken:
        n += 1
    return f"{base}{n}"


async def list_rules(stage_id: int) -> list[Rule]:
    return await Rule.filter(stage_id=stage_id).order_by("position", "id")


async def get_rule(rule_id: int) -> Rule:
    rule = await Rule.get_or_none(id=rule_id)
    if rule is None:
        raise NotFound("rule", rule_id)
    return rule


async def create_rule(stage_id: int, data: RuleInput, *, actor: Acting) -> Rule:
    require_admin(actor)
    stage = await _stage(stage_id)
    action = get_action(data.action_type or "")
    values: dict[str, Any] = {
        "action_type": data.action_type,
        "title": data.title if data.title is not None else (action.title if action else ""),
        "key": data.key or await _unique_key(stage_id, (data.action_type or "rule").replace("-", "_")),
        "lane": data.lane or Lane.parallel,
        "params": data.params or {},
        "condition": data.condition or [],
        "timing": data.timing or {},
        "run_as_id": data.run_as_id,
    }
    values = await _validated(stage, values, position=data.position)
    async with transaction():
        last = await Rule.filter(stage_id=stage_id).order_by("-position").first()
        rule = await Rule.create(
            stage_id=stage_id, position=(last.position + 1) if last else 0,
            enabled=True if data.enabled is None else data.enabled,
            stop_lane_on_failure=bool(data.stop_lane_on_failure), **values,
        )
        if data.position is not None:
            await _place(rule, data.position)
        await _first_rule_starts_with_stage(stage_id)
        await revisions.record(stage_id, author_id=actor.user_id, note=f"rule “{rule.title}” added")
    return await Rule.get(id=rule.id)


async def update_rule(rule_id: int, data: RuleInput, *, actor: Acting) -> Rule:
    require_admin(actor)
    rule = await get_rule(rule_id)
    stage = await _stage(rule.stage_id)
    values: dict[str, Any] = {
        name: getattr(data, name) if getattr(data, name) is not None else getattr(rule, name)
        for name in ("action_type", "title", "key", "lane", "params", "condition", "timing")
    }
    values["run_as_id"] = None if data.clear_run_as else data.run_as_id if data.run_as_id is not None else rule.run_as_id
    values = await _validated(stage, values, rule=rule, position=data.position)
    async with transaction():
        for name, value in values.items():
            setattr(rule, name, value)
        if data.enabled is not None:
            rule.enabled = data.enabled
        if data.stop_lane_on_failure is not None:
            rule.stop_lane_on_failure = data.stop_lane_on_failure
        await rule.save()
        if data.position is not None:
            await _place(rule, data.position)
        await _first_rule_starts_with_stage(stage.id)
        await revisions.record(stage.id, author_id=actor.user_id, note=f"rule “{rule.title}” changed")
    return await Rule.get(id=rule.id)


async def delete_rule(rule_id: int, *, actor: Acting) -> None:
    require_admin(actor)
    rule = await get_rule(rule_id)
    async with transaction():
        await rule.delete()
        await _first_rule_starts_with_stage(rule.stage_id)
        await revisions.record(rule.stage_id, author_id=actor.user_id, note=f"rule “{rule.title}” deleted")


async def reorder_rules(stage_id: int, rule_ids: list[int], *, actor: Acting) -> list[Rule]:
    """Set the order of a stage's rules; the list must name each of them once."""
    require_admin(actor)
    await _stage(stage_id)
    current = await list_rules(stage_id)
    if sorted(rule_ids) != sorted(r.id for r in current):
        raise ValidationFailed.one("rule_ids", "list every rule of the stage exactly once")
    async with transaction():
        for position, rule_id in enumerate(rule_ids):
            await Rule.filter(id=rule_id).update(position=position)
        await _first_rule_starts_with_stage(stage_id)
        await revisions.record(stage_id, author_id=actor.user_id, note="rules reordered")
    return await list_rules(stage_id)


async def move_rule(rule_id: int, direction: str, *, actor: Acting) -> list[Rule]:
    """Move a rule one place `up` or `down` in its stage; at the top (or bottom) it stays where it is."""
    require_admin(actor)
    if direction not in ("up", "down"):
        raise ValidationFailed.one("direction", "must be 'up' or 'down'")
    rule = await get_rule(rule_id)
    ids = [r.id for r in await list_rules(rule.stage_id)]
    index = ids.index(rule.id)
    target = max(0, min(len(ids) - 1, index + (-1 if direction == "up" else 1)))
    ids.insert(target, ids.pop(index))
    return await reorder_rules(rule.stage_id, ids, actor=actor)


async def _first_rule_starts_with_stage(stage_id: int) -> None:
    """"After previous" waits for the rule above; the first rule has none, so it starts with the stage.
    Whatever made a rule first (a delete, a reorder, a move, a create at the top) stores it as
    parallel in the same revision, so the stored lane, the board and the API say what the engine does."""
    first = await Rule.filter(stage_id=stage_id).order_by("position", "id").first()
    if first is not None and first.lane != Lane.parallel:
        await Rule.filter(id=first.id).update(lane=Lane.parallel)


def first_rule_after(rules: list[Rule], removed_id: int) -> Rule | None:
    """The rule that would become first if `removed_id` were deleted, when it waits for the rule above
    today (it will start with the stage instead): for the delete confirmation."""
    rest = [r for r in rules if r.id != removed_id]
    if rules and rules[0].id == removed_id and rest and rest[0].lane == Lane.after_previous:
        return rest[0]
    return None


async def _place(rule: Rule, position: int) -> None:
    others = [r.id for r in await list_rules(rule.stage_id) if r.id != rule.id]
    others.insert(max(0, min(position, len(others))), rule.id)
    for index, rule_id in enumerate(others):
        await Rule.filter(id=rule_id).update(position=index)
