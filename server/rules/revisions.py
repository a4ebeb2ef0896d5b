"""Every change to a stage's rules is a numbered revision; stage runs pin the one in force."""

from typing import Any

from tortoise.expressions import F

from server.models import Rule, Stage, StageRevision


def rule_snapshot(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id, "stage_id": rule.stage_id, "key": rule.key, "title": rule.title, "position": rule.position, "lane": rule.lane,
        "action_type": rule.action_type, "params": rule.params, "condition": rule.condition,
        "timing": rule.timing, "run_as_id": rule.run_as_id, "enabled": rule.enabled,
        "stop_lane_on_failure": rule.stop_lane_on_failure,
    }


async def record(stage_id: int, *, author_id: int | None) -> StageRevision:
    """Snapshot the stage's rules as its next revision (call inside the saving transaction)."""
    await Stage.filter(id=stage_id).update(revision=F("revision") + 1)
    stage = await Stage.get(id=stage_id)
    rules = await Rule.filter(stage_id=stage_id).order_by("position", "id")
    return await StageRevision.create(
        stage_id=stage_id, number=stage.revision, rules=[rule_snapshot(r) for r in rules], author_id=author_id
    )


async def rules_in_force(stage: Stage) -> tuple[int, list[dict[str, Any]]]:
    if stage.revision == 0:
        return 0, []
    revision = await StageRevision.get(stage_id=stage.id, number=stage.revision)
    return revision.number, list(revision.rules)
