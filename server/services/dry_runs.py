"""Dry runs for the faces: "what happens if this element enters that stage now", checked against who asks.

The engine's `rules/dry_run.py` does the work by reads only; this decides who may ask: anyone who may see the
element (an employee the leads and deals they are responsible for), for a stage of the element's pipeline.
"""

from server.errors import NotFound, ValidationFailed
from server.models import Pipeline, Stage
from server.rules import dry_run as engine_dry_run
from server.rules.dry_run import DryRun, RulePreview
from server.services.access import Acting
from server.services.elements import get_element

__all__ = ["DryRun", "RulePreview", "dry_run"]


async def dry_run(element_id: int, stage_id: int, *, actor: Acting) -> DryRun:
    """What entering `stage_id` now would do to the element of that stage's pipeline: nothing is written or sent."""
    stage = await Stage.get_or_none(id=stage_id)
    if stage is None:
        raise NotFound("stage", stage_id)
    pipeline = await Pipeline.get(id=stage.pipeline_id)
    element = await get_element(pipeline.entity_type, element_id, actor=actor)
    if element.pipeline_id != stage.pipeline_id:
        raise ValidationFailed.one("stage_id", f"stage “{stage.name}” is not in the pipeline of "
                                               f"{pipeline.entity_type} {element_id}")
    return await engine_dry_run.dry_run(pipeline.entity_type, element.id, stage.id)
