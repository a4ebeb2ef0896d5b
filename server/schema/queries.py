"""Reads: the signed-in user, pipelines, leads and deals, rules, run logs, timelines, tasks, catalogue.

Every resolver starts from the authenticated actor; the services apply the permission matrix.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.types import Info

from server.kinds import ElementType
from server.rules.actions import registry
from server.schema.context import actor_of
from server.schema.errors import ForbiddenError, NotFoundError, Refused, ValidationError, result_of
from server.schema.ids import opt_int, to_int
from server.schema.relay import Connection, connection, decode
from server.schema.types import (
    ActionType,
    ApiToken,
    AuditEntry,
    Company,
    Contact,
    Deal,
    Lead,
    Pipeline,
    Rule,
    RuleRun,
    Stage,
    StageRun,
    Task,
    TimelineEntry,
    User,
)
from server.schema.messages import MessageQuery
from server.schema.nodes import NodeQuery
from server.schema.documents import DocumentQuery
from server.schema.bookings import BookingQuery
from server.schema.revisions import RevisionQuery
from server.schema.triggers import TriggerQuery
from server.schema.dry_runs import DryRunQuery
from server.schema.work import WorkQuery
from server.services import clients as client_service
from server.services import elements as element_service
from server.services import pipelines as pipeline_service
from server.services import rules as rule_service
from server.services import runs as run_service
from server.services import tokens as token_service
from server.services import users as user_service
from server.services.paging import MAX_PAGE

LOG_PAGE = ("The element's {}, oldest first: at most `first` (up to 100), after the id `after` "
            "(pass the last id you have to read on).")

LeadLookup = Annotated[Lead | ValidationError | NotFoundError | ForbiddenError, strawberry.union("LeadLookup")]
DealLookup = Annotated[Deal | ValidationError | NotFoundError | ForbiddenError, strawberry.union("DealLookup")]
ContactLookup = Annotated[Contact | ValidationError | NotFoundError | ForbiddenError, strawberry.union("ContactLookup")]
CompanyLookup = Annotated[Company | ValidationError | NotFoundError | ForbiddenError, strawberry.union("CompanyLookup")]
Shown = TypeVar("Shown")  # the GraphQL type of an element: Lead or Deal


# `present` takes Any: the services answer the Element base model, and element_type says which subclass it is.
async def _elements(element_type: str, present: Callable[[Any], Shown], info: Info, *, first: int, after: str | None,
                    pipeline_id: strawberry.ID | None, stage_id: strawberry.ID | None,
                    responsible_id: strawberry.ID | None, search: str | None) -> Connection[Shown]:
    page = await element_service.list_elements(
        element_type, pipeline_id=opt_int(pipeline_id, "pipeline_id"), stage_id=opt_int(stage_id, "stage_id"),
        responsible_id=opt_int(responsible_id, "responsible_id"), search=search, first=first,
        after=decode(after), actor=actor_of(info),
    )
    return connection(page, present, after=after)


async def _lookup(
    element_type: str, present: Callable[[Any], Shown], info: Info, id: strawberry.ID
) -> Shown | Refused:
    actor = actor_of(info)
    return await result_of(lambda: element_service.get_element(element_type, to_int(id, "id"), actor=actor), present)


@strawberry.type
class Query(WorkQuery, MessageQuery, TriggerQuery, DocumentQuery, BookingQuery, DryRunQuery, RevisionQuery, NodeQuery):
    @strawberry.field(description="The user the API token acts as.")
    async def me(self, info: Info) -> User:
        actor = actor_of(info)
        return User.of(await user_service.get_user(actor.user_id, actor=actor))

    @strawberry.field
    async def users(self, info: Info) -> list[User]:
        return [User.of(u) for u in await user_service.list_users(actor=actor_of(info))]

    @strawberry.field
    async def pipelines(self, info: Info, entity_type: str | None = None) -> list[Pipeline]:
        actor_of(info)
        return [Pipeline.of(p) for p in await pipeline_service.list_pipelines(entity_type)]

    @strawberry.field
    async def stage(self, info: Info, id: strawberry.ID) -> Stage | None:
        actor_of(info)
        row = await pipeline_service.get_stage(to_int(id, "id"))
        return None if row is None else Stage.of(row)

    @strawberry.field(description="Leads newest first; employees see the ones they are responsible for.")
    async def leads(
        self, info: Info, first: int = 50, after: str | None = None, pipeline_id: strawberry.ID | None = None,
        stage_id: strawberry.ID | None = None, responsible_id: strawberry.ID | None = None, search: str | None = None,
    ) -> Connection[Lead]:
        return await _elements(ElementType.lead, Lead.of, info, first=first, after=after, pipeline_id=pipeline_id,
                               stage_id=stage_id, responsible_id=responsible_id, search=search)

    @strawberry.field(description="Deals newest first; employees see the ones they are responsible for.")
    async def deals(
        self, info: Info, first: int = 50, after: str | None = None, pipeline_id: strawberry.ID | None = None,
        stage_id: strawberry.ID | None = None, responsible_id: strawberry.ID | None = None, search: str | None = None,
    ) -> Connection[Deal]:
        return await _elements(ElementType.deal, Deal.of, info, first=first, after=after, pipeline_id=pipeline_id,
                               stage_id=stage_id, responsible_id=responsible_id, search=search)

    @strawberry.field
    async def lead(self, info: Info, id: strawberry.ID) -> LeadLookup:
        return await _lookup(ElementType.lead, Lead.of, info, id)

    @strawberry.field
    async def deal(self, info: Info, id: strawberry.ID) -> DealLookup:
        return await _lookup(ElementType.deal, Deal.of, info, id)

    @strawberry.field
    async def rules(self, info: Info, stage_id: strawberry.ID) -> list[Rule]:
        actor_of(info)
        return [Rule.of(r) for r in await rule_service.list_rules(to_int(stage_id, "stage_id"))]

    @strawberry.field(description="The run log, newest first, filtered by status, rule, stage, element and time.")
    async def rule_runs(
        self, info: Info, first: int = 50, after: str | None = None, status: list[str] | None = None,
        rule_id: strawberry.ID | None = None, stage_id: strawberry.ID | None = None,
        element_type: str | None = None, element_id: strawberry.ID | None = None,
        created_after: datetime | None = None, created_before: datetime | None = None, oldest_first: bool = False,
    ) -> Connection[RuleRun]:
        page = await run_service.list_rule_runs(
            statuses=status, rule_id=opt_int(rule_id, "rule_id"), stage_id=opt_int(stage_id, "stage_id"),
            element_type=element_type, element_id=opt_int(element_id, "element_id"),
            created_after=created_after, created_before=created_before, first=first, after=decode(after),
            oldest_first=oldest_first, actor=actor_of(info),
        )
        return connection(page, RuleRun.of, after=after)

    @strawberry.field(description=LOG_PAGE.format("timeline entries"))
    async def timeline(self, info: Info, element_type: str, element_id: strawberry.ID, first: int = MAX_PAGE,
                       after: strawberry.ID | None = None) -> list[TimelineEntry]:
        entries = await element_service.timeline(element_type, to_int(element_id, "element_id"), actor=actor_of(info),
                                                  first=first, after=opt_int(after, "after"))
        return [TimelineEntry.of(e) for e in entries]

    @strawberry.field(description=LOG_PAGE.format("field and stage changes"))
    async def audit_trail(self, info: Info, element_type: str, element_id: strawberry.ID, first: int = MAX_PAGE,
                          after: strawberry.ID | None = None) -> list[AuditEntry]:
        entries = await element_service.audit_trail(element_type, to_int(element_id, "element_id"),
                                                    actor=actor_of(info), first=first, after=opt_int(after, "after"))
        return [AuditEntry.of(e) for e in entries]

    @strawberry.field(description=LOG_PAGE.format("stays in a stage"))
    async def stage_runs(self, info: Info, element_type: str, element_id: strawberry.ID, first: int = MAX_PAGE,
                         after: strawberry.ID | None = None) -> list[StageRun]:
        runs = await element_service.stage_runs(element_type, to_int(element_id, "element_id"), actor=actor_of(info),
                                                first=first, after=opt_int(after, "after"))
        return [StageRun.of(r) for r in runs]

    @strawberry.field(description=LOG_PAGE.format("tasks"))
    async def tasks(self, info: Info, element_type: str, element_id: strawberry.ID, first: int = MAX_PAGE,
                    after: strawberry.ID | None = None) -> list[Task]:
        tasks = await element_service.tasks(element_type, to_int(element_id, "element_id"), actor=actor_of(info),
                                            first=first, after=opt_int(after, "after"))
        return [Task.of(t) for t in tasks]

    @strawberry.field(description="API tokens (admins only); the secrets are never shown again.")
    async def api_tokens(self, info: Info) -> list[ApiToken]:
        return [ApiToken.of(t) for t in await token_service.list_tokens(actor_of(info))]

    @strawberry.field
    def action_types(self, info: Info) -> list[ActionType]:
        actor_of(info)
        return [ActionType.of(action) for action in registry().values()]

    # Clients. An employee sees the contacts and companies they are responsible for or that are linked to their
    # leads and deals; any other id (existing or not) is a ForbiddenError for them.
    @strawberry.field
    async def contact(self, info: Info, id: strawberry.ID) -> ContactLookup:
        actor = actor_of(info)
        return await result_of(lambda: client_service.get_contact(to_int(id, "id"), actor=actor), Contact.of)

    @strawberry.field
    async def company(self, info: Info, id: strawberry.ID) -> CompanyLookup:
        actor = actor_of(info)
        return await result_of(lambda: client_service.get_company(to_int(id, "id"), actor=actor), Company.of)
