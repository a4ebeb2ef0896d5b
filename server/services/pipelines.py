"""Pipelines and their stages, as the faces read them."""

from server.models import Pipeline, Stage


async def list_pipelines(entity_type: str | None = None) -> list[Pipeline]:
    query = Pipeline.all() if entity_type is None else Pipeline.filter(entity_type=entity_type)
    return await query.order_by("position", "id")


async def get_stage(stage_id: int) -> Stage | None:
    return await Stage.get_or_none(id=stage_id)
