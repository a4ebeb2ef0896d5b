"""Every change to a stage's rules or triggers is a numbered revision; stage runs pin the one in force.

A revision keeps the stage's rules and triggers as they were after the change, who made it and what it was,
so two revisions can be compared field by field and an old one brought back as a new revision.
"""

from dataclasses import dataclass, field
from typing import Any

from tortoise.expressions import F

from server.models import Rule, Stage, StageRevision, Trigger
from server.rules.metadata import METADATA

# The fields a diff compares, in the order it names them.
RULE_FIELDS = ("title", "key", "action_type", "params", "condition", "timing", "lane", "enabled",
               "stop_lane_on_failure", "run_as_id", "position")
TRIGGER_FIELDS = ("name", "trigger_type", "settings", "condition", "allow_back", "enabled", "run_as_id", "position")


def rule_snapshot(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id, "stage_id": rule.stage_id, "key": rule.key, "title": rule.title, "position": rule.position, "lane": rule.lane,
        "action_type": rule.action_type, "params": rule.params, "condition": rule.condition,
        "timing": rule.timing, "run_as_id": rule.run_as_id, "enabled": rule.enabled,
        "stop_lane_on_failure": rule.stop_lane_on_failure,
    }


def trigger_snapshot(trigger: Trigger) -> dict[str, Any]:
    """A trigger as a revision keeps it: without its webhook token, a secret that is not configuration."""
    return {
        "id": trigger.id, "stage_id": trigger.stage_id, "name": trigger.name, "trigger_type": trigger.trigger_type,
        "settings": trigger.settings, "condition": trigger.condition, "allow_back": trigger.allow_back,
        "run_as_id": trigger.run_as_id, "position": trigger.position, "enabled": trigger.enabled,
    }


async def record(stage_id: int, *, author_id: int | None, note: str = "") -> StageRevision:
    """Snapshot the stage's rules and triggers as its next revision (call inside the saving transaction)."""
    await Stage.filter(id=stage_id).update(revision=F("revision") + 1)
    stage = await Stage.get(id=stage_id)
    rules = await Rule.filter(stage_id=stage_id).order_by("position", "id")
    triggers = await Trigger.filter(stage_id=stage_id).order_by("position", "id")
    return await StageRevision.create(
        stage_id=stage_id, number=stage.revision, rules=[rule_snapshot(r) for r in rules],
        triggers=[trigger_snapshot(t) for t in triggers], author_id=author_id, note=note[:255],
    )


async def rules_in_force(stage: Stage) -> tuple[int, list[dict[str, Any]]]:
    # Copies: the snapshot is the process's, shared by every unit of work that enters the stage.
    return stage.revision, [dict(rule) for rule in await METADATA.revision_rules(stage.id, stage.revision)]


@dataclass(frozen=True)
class FieldChange:
    name: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ItemChange:
    """One rule or trigger that differs between two revisions, named as in the newer one."""

    id: int
    name: str
    changes: list[FieldChange]


@dataclass
class Part:
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[ItemChange] = field(default_factory=list)


@dataclass
class Diff:
    older: int
    newer: int
    rules: Part
    triggers: Part
    triggers_known: bool  # False when either revision predates triggers in revisions


def _field_changes(old: dict[str, Any], new: dict[str, Any], names: tuple[str, ...]) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for name in names:
        if name == "params" or name == "settings":  # dicts: key by key, so the diff names the changed param
            before, after = old.get(name) or {}, new.get(name) or {}
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    changes.append(FieldChange(f"{name}.{key}", before.get(key), after.get(key)))
        elif old.get(name) != new.get(name):
            changes.append(FieldChange(name, old.get(name), new.get(name)))
    return changes


def _part(old: list[dict[str, Any]], new: list[dict[str, Any]], names: tuple[str, ...], label: str) -> Part:
    before = {item["id"]: item for item in old}
    after = {item["id"]: item for item in new}
    part = Part(added=[after[i] for i in after if i not in before], removed=[before[i] for i in before if i not in after])
    for item_id, item in after.items():
        if item_id in before:
            changes = _field_changes(before[item_id], item, names)
            if changes:
                part.changed.append(ItemChange(item_id, str(item.get(label, "")), changes))
    return part


def diff(older: StageRevision, newer: StageRevision) -> Diff:
    """What changed from `older` to `newer`: rules and triggers added, removed, and changed field by field."""
    known = older.triggers is not None and newer.triggers is not None
    return Diff(
        older=older.number, newer=newer.number,
        rules=_part(older.rules, newer.rules, RULE_FIELDS, "title"),
        triggers=_part(older.triggers or [], newer.triggers or [], TRIGGER_FIELDS, "name") if known else Part(),
        triggers_known=known,
    )
