"""Writes. Every mutation returns a union: errors the user caused are results, not GraphQL errors."""

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from server.errors import ValidationFailed
from server.kinds import ElementType
from server.schema.admin import AdminMutation
from server.schema.context import actor_of, context_of
from server.schema.errors import ForbiddenError, NotFoundError, ValidationError, result_of
from server.schema.ids import gid, opt_int, to_int
from server.schema.types import (
    ApiToken,
    Company,
    Contact,
    CustomerActivity,
    Deal,
    Deleted,
    Lead,
    NewApiToken,
    Rule,
    StageRules,
    Task,
    TimelineEntry,
)
from server.schema.messages import MessageMutation
from server.schema.documents import DocumentMutation
from server.schema.bookings import BookingMutation
from server.schema.revisions import RevisionMutation
from server.schema.triggers import TriggerMutation
from server.schema.work import WorkMutation
from server.services import clients as client_service
from server.services import elements as element_service
from server.services import idempotency
from server.services import rules as rule_service
from server.services import tokens as token_service

LeadResult = Annotated[Lead | ValidationError | NotFoundError | ForbiddenError, strawberry.union("LeadResult")]
DealResult = Annotated[Deal | ValidationError | NotFoundError | ForbiddenError, strawberry.union("DealResult")]
DeleteOutcome = Annotated[Deleted | ValidationError | NotFoundError | ForbiddenError, strawberry.union("DeleteOutcome")]
RuleResult = Annotated[Rule | ValidationError | NotFoundError | ForbiddenError, strawberry.union("RuleResult")]
StageRulesResult = Annotated[StageRules | ValidationError | NotFoundError | ForbiddenError, strawberry.union("StageRulesResult")]
ActivityResult = Annotated[CustomerActivity | ValidationError | NotFoundError | ForbiddenError, strawberry.union("ActivityResult")]
NewApiTokenResult = Annotated[NewApiToken | ValidationError | ForbiddenError, strawberry.union("NewApiTokenResult")]
ApiTokenResult = Annotated[ApiToken | ValidationError | NotFoundError | ForbiddenError, strawberry.union("ApiTokenResult")]
CommentResult = Annotated[
    TimelineEntry | ValidationError | NotFoundError | ForbiddenError, strawberry.union("CommentResult")
]
TaskResult = Annotated[Task | ValidationError | NotFoundError | ForbiddenError, strawberry.union("TaskResult")]


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed.one(field, "must be an object of field names to values")
    return value


def _as_sent(value: JSON | None) -> Any:
    """Rule JSON as the client sent it: the rule service checks its shape and names the field it refuses."""
    return value


@strawberry.input
class CreateLeadInput:
    title: str
    stage_id: strawberry.ID | None = None
    pipeline_id: strawberry.ID | None = None
    fields: JSON | None = strawberry.field(default=None, description="Other fields by code: amount, responsible, …")


@strawberry.input
class CreateDealInput(CreateLeadInput):
    contact_ids: list[strawberry.ID] | None = None


@strawberry.input
class RuleInput:
    """Fields left out keep their value on update (or take the default on create)."""

    action_type: str | None = None
    title: str | None = None
    key: str | None = None
    lane: str | None = None
    params: JSON | None = None
    condition: JSON | None = None
    timing: JSON | None = None
    run_as_id: strawberry.ID | None = None
    clear_run_as: bool = strawberry.field(default=False, description="On update: run as the element's responsible again.")
    enabled: bool | None = None
    stop_lane_on_failure: bool | None = None
    position: int | None = None

    def to_service(self) -> rule_service.RuleInput:
        return rule_service.RuleInput(
            action_type=self.action_type, title=self.title, key=self.key, lane=self.lane, params=_as_sent(self.params),
            condition=_as_sent(self.condition), timing=_as_sent(self.timing),
            run_as_id=opt_int(self.run_as_id, "run_as_id"), clear_run_as=self.clear_run_as,
            enabled=self.enabled, stop_lane_on_failure=self.stop_lane_on_failure, position=self.position,
        )


# Clients: contacts and companies with typed email addresses and phone numbers.

ContactResult = Annotated[Contact | ValidationError | NotFoundError | ForbiddenError, strawberry.union("ContactResult")]
CompanyResult = Annotated[Company | ValidationError | NotFoundError | ForbiddenError, strawberry.union("CompanyResult")]


@strawberry.input(description="An email address or phone number. Types: work, home, other; for numbers also mobile.")
class ClientAddressInput:
    value: str
    type: str = "work"


def _addresses(given: list[ClientAddressInput] | None) -> list[client_service.Address] | None:
    return None if given is None else [client_service.Address(value=a.value, type=a.type) for a in given]


@strawberry.input(description="Fields left out keep their value on update. `emails` / `phones` replace the lists "
                              f"(at most {client_service.MAX_ADDRESSES} each, first first); numbers are stored in "
                              "E.164, one without a country code read in the server's default region.")
class CompanyInput:
    name: str | None = None
    emails: list[ClientAddressInput] | None = None
    phones: list[ClientAddressInput] | None = None
    responsible_id: strawberry.ID | None = strawberry.field(
        default=None, description="Default on create: the signed-in user (an employee may create only their own).")
    fields: JSON | None = strawberry.field(default=None, description="Custom fields by code.")

    def to_service(self) -> client_service.ClientInput:
        return client_service.ClientInput(
            name=self.name, emails=_addresses(self.emails), phones=_addresses(self.phones),
            responsible_id=opt_int(self.responsible_id, "responsible_id"), fields=_object(self.fields, "fields"),
        )


@strawberry.input(description="As CompanyInput, and the company the contact works for.")
class ContactInput(CompanyInput):
    company_id: strawberry.ID | None = None
    clear_company: bool = strawberry.field(default=False, description="On update: link the contact to no company.")

    def to_service(self) -> client_service.ClientInput:
        data = super().to_service()
        data.company_id = opt_int(self.company_id, "company_id")
        data.clear_company = self.clear_company
        return data


IDEMPOTENCY_KEY = ("A key of your choosing (1 to 200 characters), or the Idempotency-Key header: sent again "
                   "with the same input by the same user, the create answers what it made the first time "
                   "instead of making it twice. Kept 24 hours (PIPEWRIGHT_IDEMPOTENCY_KEY_RETENTION_H).")


def _key_of(info: Info, argument: str | None) -> str | None:
    """The `idempotencyKey` argument, else the HTTP request's Idempotency-Key header (not a websocket's
    handshake header, which would make every create on the socket one)."""
    context = context_of(info)
    if argument is not None or context.connection is not None:
        return argument
    headers = getattr(context.request, "headers", None)
    return None if headers is None else headers.get("idempotency-key")


async def _once(info: Info, operation: str, key: str | None, given: Any, result_type: str,
                create: Callable[[], Awaitable[Any]], load: Callable[[int], Awaitable[Any]]) -> Any:
    return await idempotency.once(key=_key_of(info, key), operation=operation, given=dataclasses.asdict(given),
                                  result_type=result_type, create=create, load=load, actor=actor_of(info))


async def _create(element_type: str, info: Info, data: CreateLeadInput | CreateDealInput, key: str | None) -> Any:
    contact_ids = getattr(data, "contact_ids", None)
    actor = actor_of(info)

    async def create() -> Any:
        return await element_service.create_element(
            element_type, {**_object(data.fields, "fields"), "title": data.title},
            stage_id=opt_int(data.stage_id, "stage_id"), pipeline_id=opt_int(data.pipeline_id, "pipeline_id"),
            contact_ids=None if contact_ids is None else [to_int(i, "contact_ids") for i in contact_ids],
            actor=actor,
        )

    return await _once(info, f"create_{element_type}", key, data, element_type, create,
                       lambda ident: element_service.get_element(element_type, ident, actor=actor))


async def _update(element_type: str, info: Info, id: strawberry.ID, fields: JSON) -> Any:
    return await element_service.update_element(
        element_type, to_int(id, "id"), _object(fields, "fields"), actor=actor_of(info)
    )


async def _move(element_type: str, info: Info, id: strawberry.ID, stage_id: strawberry.ID) -> Any:
    return await element_service.move_element(
        element_type, to_int(id, "id"), to_int(stage_id, "stage_id"), actor=actor_of(info)
    )


async def _delete(element_type: str, info: Info, id: strawberry.ID) -> Deleted:
    await element_service.delete_element(element_type, to_int(id, "id"), actor=actor_of(info))
    return Deleted(ok=True, id=id)



@strawberry.type
class Mutation(WorkMutation, AdminMutation, MessageMutation, TriggerMutation, DocumentMutation, BookingMutation,
               RevisionMutation):
    @strawberry.mutation
    async def create_lead(self, info: Info, input: CreateLeadInput,
                          idempotency_key: Annotated[str | None, strawberry.argument(description=IDEMPOTENCY_KEY)] = None,
                          ) -> LeadResult:
        return await result_of(lambda: _create(ElementType.lead, info, input, idempotency_key), Lead.of)

    @strawberry.mutation
    async def create_deal(self, info: Info, input: CreateDealInput,
                          idempotency_key: Annotated[str | None, strawberry.argument(description=IDEMPOTENCY_KEY)] = None,
                          ) -> DealResult:
        return await result_of(lambda: _create(ElementType.deal, info, input, idempotency_key), Deal.of)

    @strawberry.mutation
    async def update_lead(self, info: Info, id: strawberry.ID, fields: JSON) -> LeadResult:
        return await result_of(lambda: _update(ElementType.lead, info, id, fields), Lead.of)

    @strawberry.mutation
    async def update_deal(self, info: Info, id: strawberry.ID, fields: JSON) -> DealResult:
        return await result_of(lambda: _update(ElementType.deal, info, id, fields), Deal.of)

    @strawberry.mutation
    async def move_lead(self, info: Info, id: strawberry.ID, stage_id: strawberry.ID) -> LeadResult:
        return await result_of(lambda: _move(ElementType.lead, info, id, stage_id), Lead.of)

    @strawberry.mutation
    async def move_deal(self, info: Info, id: strawberry.ID, stage_id: strawberry.ID) -> DealResult:
        return await result_of(lambda: _move(ElementType.deal, info, id, stage_id), Deal.of)

    @strawberry.mutation
    async def delete_lead(self, info: Info, id: strawberry.ID) -> DeleteOutcome:
        return await result_of(lambda: _delete(ElementType.lead, info, id))

    @strawberry.mutation
    async def delete_deal(self, info: Info, id: strawberry.ID) -> DeleteOutcome:
        return await result_of(lambda: _delete(ElementType.deal, info, id))

    @strawberry.mutation
    async def create_rule(self, info: Info, stage_id: strawberry.ID, input: RuleInput) -> RuleResult:
        return await result_of(
            lambda: rule_service.create_rule(to_int(stage_id, "stage_id"), input.to_service(), actor=actor_of(info)),
            Rule.of,
        )

    @strawberry.mutation
    async def update_rule(self, info: Info, id: strawberry.ID, input: RuleInput) -> RuleResult:
        return await result_of(
            lambda: rule_service.update_rule(to_int(id, "id"), input.to_service(), actor=actor_of(info)),
            Rule.of,
        )

    @strawberry.mutation
    async def delete_rule(self, info: Info, id: strawberry.ID) -> DeleteOutcome:
        async def delete() -> Deleted:
            await rule_service.delete_rule(to_int(id, "id"), actor=actor_of(info))
            return Deleted(ok=True, id=id)

        return await result_of(delete)

    @strawberry.mutation
    async def reorder_rules(self, info: Info, stage_id: strawberry.ID, rule_ids: list[strawberry.ID]) -> StageRulesResult:
        async def reorder() -> StageRules:
            stage = to_int(stage_id, "stage_id")
            ids = [to_int(i, "rule_ids") for i in rule_ids]
            rules = await rule_service.reorder_rules(stage, ids, actor=actor_of(info))
            return StageRules(stage_id=gid(stage), rules=[Rule.of(r) for r in rules])

        return await result_of(reorder)

    @strawberry.mutation
    async def record_customer_activity(
        self, info: Info, element_type: str, element_id: strawberry.ID, kind: str, text: str = ""
    ) -> ActivityResult:
        actor = actor_of(info)
        return await result_of(
            lambda: element_service.record_customer_activity(
                element_type, to_int(element_id, "element_id"), kind=kind, text=text, actor=actor
            ),
            CustomerActivity.of,
        )

    @strawberry.mutation(description="A comment on the timeline of a lead or deal, by the signed-in user.")
    async def add_comment(self, info: Info, element_type: str, element_id: strawberry.ID, text: str,
                          idempotency_key: Annotated[str | None, strawberry.argument(description=IDEMPOTENCY_KEY)] = None,
                          ) -> CommentResult:
        actor = actor_of(info)
        given = {"element_type": element_type, "element_id": element_id, "text": text}
        return await result_of(lambda: idempotency.once(
            key=_key_of(info, idempotency_key), operation="add_comment", given=given, result_type="timeline_entry",
            create=lambda: element_service.add_comment(element_type, to_int(element_id, "element_id"), text, actor=actor),
            load=lambda ident: element_service.get_timeline_entry(ident, actor=actor), actor=actor), TimelineEntry.of)

    @strawberry.mutation
    async def close_task(self, info: Info, id: strawberry.ID) -> TaskResult:
        return await result_of(lambda: element_service.close_task(to_int(id, "id"), actor=actor_of(info)), Task.of)

    @strawberry.mutation(description="Admins only. The secret is in the answer and never shown again.")
    async def create_api_token(self, info: Info, user_id: strawberry.ID, name: str) -> NewApiTokenResult:
        actor = actor_of(info)

        async def create() -> NewApiToken:
            token, secret = await token_service.create_token(actor, user_id=to_int(user_id, "user_id"), name=name)
            return NewApiToken(token=ApiToken.of(token), secret=secret)

        result = await result_of(create)
        assert not isinstance(result, NotFoundError)  # create_token refuses an unknown user as a ValidationError
        return result

    @strawberry.mutation(description="Admins only. The token stops working at once.")
    async def revoke_api_token(self, info: Info, id: strawberry.ID) -> ApiTokenResult:
        actor = actor_of(info)
        return await result_of(lambda: token_service.revoke_token(actor, to_int(id, "id")), ApiToken.of)

    @strawberry.mutation(description="A new contact; employees create contacts they are responsible for.")
    async def create_contact(self, info: Info, input: ContactInput,
                             idempotency_key: Annotated[str | None, strawberry.argument(description=IDEMPOTENCY_KEY)] = None,
                             ) -> ContactResult:
        actor = actor_of(info)
        return await result_of(lambda: _once(
            info, "create_contact", idempotency_key, input, "contact",
            lambda: client_service.create_contact(input.to_service(), actor=actor),
            lambda ident: client_service.get_contact(ident, actor=actor)), Contact.of)

    @strawberry.mutation(description="Change a contact; employees change the contacts they are responsible for.")
    async def update_contact(self, info: Info, id: strawberry.ID, input: ContactInput) -> ContactResult:
        actor = actor_of(info)
        return await result_of(
            lambda: client_service.update_contact(to_int(id, "id"), input.to_service(), actor=actor), Contact.of)

    @strawberry.mutation(description="A new company; employees create companies they are responsible for.")
    async def create_company(self, info: Info, input: CompanyInput,
                             idempotency_key: Annotated[str | None, strawberry.argument(description=IDEMPOTENCY_KEY)] = None,
                             ) -> CompanyResult:
        actor = actor_of(info)
        return await result_of(lambda: _once(
            info, "create_company", idempotency_key, input, "company",
            lambda: client_service.create_company(input.to_service(), actor=actor),
            lambda ident: client_service.get_company(ident, actor=actor)), Company.of)

    @strawberry.mutation(description="Change a company; employees change the companies they are responsible for.")
    async def update_company(self, info: Info, id: strawberry.ID, input: CompanyInput) -> CompanyResult:
        actor = actor_of(info)
        return await result_of(
            lambda: client_service.update_company(to_int(id, "id"), input.to_service(), actor=actor), Company.of)
