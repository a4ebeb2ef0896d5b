"""Pipelines and their stages: read by every face, configured by admins."""

import re
from collections.abc import Collection

from server.db import transaction
from server.errors import FieldError, NotFound, ValidationFailed
from server.kinds import ElementType, StageSemantic
from server.models import Pipeline, Stage
from server.services.access import Acting, require_admin

ENTITY_TYPES = tuple(ElementType)
SEMANTICS = tuple(StageSemantic)


async def list_pipelines(entity_type: str | None = None) -> list[Pipeline]:
    query = Pipeline.all() if entity_type is None else Pipeline.filter(entity_type=entity_type)
    return await query.order_by("position", "id")


async def get_pipeline(pipeline_id: int) -> Pipeline:
    pipeline = await Pipeline.get_or_none(id=pipeline_id)
    if pipeline is None:
        raise NotFound("pipeline", pipeline_id)
    return pipeline


async def get_stage(stage_id: int) -> Stage | None:
    return await Stage.get_or_none(id=stage_id)


async def list_stages(pipeline_id: int) -> list[Stage]:
    return await Stage.filter(pipeline_id=pipeline_id).order_by("position", "id")


async def load_stage(stage_id: int) -> Stage:
    """The stage with its pipeline loaded (`stage.pipeline`), or NotFound."""
    stage = await Stage.get_or_none(id=stage_id).prefetch_related("pipeline")
    if stage is None:
        raise NotFound("stage", stage_id)
    return stage


async def stages_by_id(*, stage_ids: Collection[int] = (), pipeline_ids: Collection[int] = ()) -> dict[int, Stage]:
    """The stages named, and every stage of the pipelines named, by id (for lists that show stage names)."""
    found: dict[int, Stage] = {}
    if stage_ids:
        found.update({stage.id: stage for stage in await Stage.filter(id__in=list(stage_ids))})
    if pipeline_ids:
        found.update({stage.id: stage for stage in await Stage.filter(pipeline_id__in=list(pipeline_ids))})
    return found


def _name(name: str, field: str = "name") -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed.one(field, "enter a name")
    if len(name) > 200:
        raise ValidationFailed.one(field, "must be at most 200 characters")
    return name


async def create_pipeline(name: str, entity_type: str, *, actor: Acting) -> Pipeline:
    require_admin(actor)
    errors = []
    if not (name or "").strip():
        errors.append(FieldError("name", "enter a name"))
    if entity_type not in ENTITY_TYPES:
        errors.append(FieldError("entity_type", "lead or deal"))
    if errors:
        raise ValidationFailed(errors)
    last = await Pipeline.all().order_by("-position").first()
    is_first = not await Pipeline.filter(entity_type=entity_type).exists()
    return await Pipeline.create(name=_name(name), entity_type=entity_type, is_default=is_first,
                                 position=(last.position + 1) if last else 0)


async def rename_pipeline(pipeline_id: int, name: str, *, actor: Acting) -> Pipeline:
    require_admin(actor)
    pipeline = await get_pipeline(pipeline_id)
    pipeline.name = _name(name)
    await pipeline.save(update_fields=["name"])
    return pipeline


def _code_for(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:56] or "stage"
    code, n = base, 2
    while code in taken:
        code, n = f"{base}_{n}", n + 1
    return code


async def create_stage(
    pipeline_id: int, name: str, *, semantic: str = StageSemantic.in_progress, actor: Acting
) -> Stage:
    """A new stage at the end of the pipeline; its code is derived from the name."""
    require_admin(actor)
    await get_pipeline(pipeline_id)
    if semantic not in SEMANTICS:
        raise ValidationFailed.one("semantic", f"one of: {', '.join(SEMANTICS)}")
    name = _name(name)
    stages = await list_stages(pipeline_id)
    code = _code_for(name, {s.code for s in stages})
    return await Stage.create(pipeline_id=pipeline_id, name=name, code=code, semantic=semantic,
                              position=(stages[-1].position + 1) if stages else 0)


async def update_stage(
    stage_id: int, *, name: str | None = None, semantic: str | None = None, actor: Acting
) -> Stage:
    require_admin(actor)
    stage = await get_stage(stage_id)
    if stage is None:
        raise NotFound("stage", stage_id)
    if name is not None:
        stage.name = _name(name)
    if semantic is not None:
        if semantic not in SEMANTICS:
            raise ValidationFailed.one("semantic", f"one of: {', '.join(SEMANTICS)}")
        stage.semantic = semantic
    await stage.save(update_fields=["name", "semantic"])
    return stage


async def reorder_stages(pipeline_id: int, stage_ids: list[int], *, actor: Acting) -> list[Stage]:
    """Set the order of a pipeline's stages; the list must name each of them once."""
    require_admin(actor)
    current = await list_stages(pipeline_id)
    if sorted(stage_ids) != sorted(s.id for s in current):
        raise ValidationFailed.one("stage_ids", "list every stage of the pipeline exactly once")
    async with transaction():
        for position, stage_id in enumerate(stage_ids):
            await Stage.filter(id=stage_id).update(position=position)
    return await list_stages(pipeline_id)


async def move_stage(stage_id: int, offset: int, *, actor: Acting) -> list[Stage]:
    """Move a stage `offset` places (-1 earlier, +1 later) within its pipeline."""
    stage = await get_stage(stage_id)
    if stage is None:
        raise NotFound("stage", stage_id)
    ids = [s.id for s in await list_stages(stage.pipeline_id)]
    index = ids.index(stage_id)
    target = max(0, min(len(ids) - 1, index + offset))
    ids.insert(target, ids.pop(index))
    return await reorder_stages(stage.pipeline_id, ids, actor=actor)
