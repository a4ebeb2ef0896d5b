"""`node(id)`: any object with a global id (`nodeId`), read with the access rules of the type's own query.

An id that names nothing gives null; one the actor may not read gives the FORBIDDEN error its own query gives.
"""

from collections.abc import Awaitable, Callable
import strawberry
from strawberry.types import Info

from server import models
from server.errors import NotFound
from server.kinds import ElementType
from server.schema.context import actor_of
from server.schema.relay import Node, decode_node
from server.schema.types import Company, Contact, Deal, Lead, Pipeline, Rule, RuleRun, Stage, User
from server.services import clients as client_service
from server.services import elements as element_service
from server.services import pipelines as pipeline_service
from server.services import rules as rule_service
from server.services import users as user_service
from server.services.access import Actor

Find = Callable[[int, Actor], Awaitable[Node | None]]


async def _lead(ident: int, actor: Actor) -> Node:
    row = await element_service.get_element(ElementType.lead, ident, actor=actor)
    assert isinstance(row, models.Lead)
    return Lead.of(row)


async def _deal(ident: int, actor: Actor) -> Node:
    row = await element_service.get_element(ElementType.deal, ident, actor=actor)
    assert isinstance(row, models.Deal)
    return Deal.of(row)


async def _contact(ident: int, actor: Actor) -> Node:
    return Contact.of(await client_service.get_contact(ident, actor=actor))


async def _company(ident: int, actor: Actor) -> Node:
    return Company.of(await client_service.get_company(ident, actor=actor))


async def _user(ident: int, actor: Actor) -> Node:
    return User.of(await user_service.get_user(ident, actor=actor))


async def _pipeline(ident: int, actor: Actor) -> Node:
    return Pipeline.of(await pipeline_service.get_pipeline(ident))


async def _stage(ident: int, actor: Actor) -> Node | None:
    row = await pipeline_service.get_stage(ident)
    return None if row is None else Stage.of(row)


async def _rule(ident: int, actor: Actor) -> Node:
    return Rule.of(await rule_service.get_rule(ident))


async def _rule_run(ident: int, actor: Actor) -> Node | None:
    run = await models.RuleRun.get_or_none(id=ident)
    if run is None:
        return None
    await element_service.require_visible(actor, run.element_type, run.element_id)  # as ruleRuns filters
    return RuleRun.of(run)


FINDERS: dict[str, Find] = {
    "Lead": _lead, "Deal": _deal, "Contact": _contact, "Company": _company, "User": _user,
    "Pipeline": _pipeline, "Stage": _stage, "Rule": _rule, "RuleRun": _rule_run,
}


@strawberry.type
class NodeQuery:
    @strawberry.field(description="The object whose `nodeId` this is (Lead, Deal, Contact, Company, User, "
                                  "Pipeline, Stage, Rule, RuleRun), under the access rules of its own query; null "
                                  "when there is none.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        actor = actor_of(info)
        type_name, ident = decode_node(id)
        find = FINDERS.get(type_name)
        if find is None:
            return None
        try:
            return await find(ident, actor)
        except NotFound:
            return None

