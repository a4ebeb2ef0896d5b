"""Reads: pipelines, leads and deals, rules, run logs, timelines, tasks and the action catalogue."""

from typing import Any

import strawberry

from server.errors import NotFound, ValidationFailed
from server.rules.actions import registry
from server.schema.ids import opt_int, to_int
from server.schema.types import (
    ActionType,
    AuditEntry,
    Deal,
    Lead,
    Page,
    Pipeline,
    Rule,
    RuleRun,
    Stage,
    StageRun,
    Task,
    TimelineEntry,
)
from server.services import elements as element_service
from server.services import pipelines as pipeline_service
from server.services import rules as rule_service

MAX_PAGE = 200


async def _page(element_type: str, present: Any, *, pipeline_id: strawberry.ID | None, stage_id: strawberry.ID | None,
                responsible_id: strawberry.ID | None, search: str | None, limit: int, offset: int) -> Any:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed.one("limit", f"must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise ValidationFailed.one("offset", "must not be negative")
    page = await element_service.list_elements(
        element_type, pipeline_id=opt_int(pipeline_id, "pipeline_id"), stage_id=opt_int(stage_id, "stage_id"),
        responsible_id=opt_int(responsible_id, "responsible_id"), search=search, limit=limit, offset=offset,
    )
    return Page(items=[present(row) for row in page.items], total=page.total)


async def _element(element_type: str, element_id: strawberry.ID) -> Any:
    try:
        return await element_service.get_element(element_type, to_int(element_id, "id"))
    except NotFound:
        return None


@strawberry.type
class Query:
    @strawberry.field
    async def pipelines(self, entity_type: str | None = None) -> list[Pipeline]:
        return [Pipeline.of(p) for p in await pipeline_service.list_pipelines(entity_type)]

    @strawberry.field
    async def stage(self, id: strawberry.ID) -> Stage | None:
        row = await pipeline_service.get_stage(to_int(id, "id"))
        return None if row is None else Stage.of(row)

    @strawberry.field
    async def leads(
        self, pipeline_id: strawberry.ID | None = None, stage_id: strawberry.ID | None = None,
        responsible_id: strawberry.ID | None = None, search: str | None = None, limit: int = 50, offset: int = 0,
    ) -> Page[Lead]:
        return await _page("lead", Lead.of, pipeline_id=pipeline_id, stage_id=stage_id,
                           responsible_id=responsible_id, search=search, limit=limit, offset=offset)

    @strawberry.field
    async def deals(
        self, pipeline_id: strawberry.ID | None = None, stage_id: strawberry.ID | None = None,
        responsible_id: strawberry.ID | None = None, search: str | None = None, limit: int = 50, offset: int = 0,
    ) -> Page[Deal]:
        return await _page("deal", Deal.of, pipeline_id=pipeline_id, stage_id=stage_id,
                           responsible_id=responsible_id, search=search, limit=limit, offset=offset)

    @strawberry.field
    async def lead(self, id: strawberry.ID) -> Lead | None:
        row = await _element("lead", id)
        return None if row is None else Lead.of(row)

    @strawberry.field
    async def deal(self, id: strawberry.ID) -> Deal | None:
        row = await _element("deal", id)
        return None if row is None else Deal.of(row)

    @strawberry.field
    async def rules(self, stage_id: strawberry.ID) -> list[Rule]:
        return [Rule.of(r) for r in await rule_service.list_rules(to_int(stage_id, "stage_id"))]

    @strawberry.field
    async def rule_runs(self, element_type: str, element_id: strawberry.ID) -> list[RuleRun]:
        runs = await element_service.rule_runs(element_type, to_int(element_id, "element_id"))
        return [RuleRun.of(r) for r in runs]

    @strawberry.field
    async def timeline(self, element_type: str, element_id: strawberry.ID) -> list[TimelineEntry]:
        entries = await element_service.timeline(element_type, to_int(element_id, "element_id"))
        return [TimelineEntry.of(e) for e in entries]

    @strawberry.field
    async def audit_trail(self, element_type: str, element_id: strawberry.ID) -> list[AuditEntry]:
        entries = await element_service.audit_trail(element_type, to_int(element_id, "element_id"))
        return [AuditEntry.of(e) for e in entries]

    @strawberry.field
    async def stage_runs(self, element_type: str, element_id: strawberry.ID) -> list[StageRun]:
        runs = await element_service.stage_runs(element_type, to_int(element_id, "element_id"))
        return [StageRun.of(r) for r in runs]

    @strawberry.field
    async def tasks(self, element_type: str, element_id: strawberry.ID) -> list[Task]:
        tasks = await element_service.tasks(element_type, to_int(element_id, "element_id"))
        return [Task.of(t) for t in tasks]

    @strawberry.field
    def action_types(self) -> list[ActionType]:
        return [ActionType.of(action) for action in registry().values()]
