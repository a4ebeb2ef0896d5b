"""GraphQL object types: thin views over the domain's rows, built with `of(row)`."""

import json
from collections.abc import Awaitable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import strawberry
from pydantic_core import to_jsonable_python
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON
from strawberry.types import Info

from server import models
from server.kinds import AddressType
from server.rules.actions.base import Action
from server.rules.actions.params import ParamSpec, describe_params, params_schema
from server.schema.context import actor_of, context_of
from server.schema.ids import gid, opt_gid, opt_int
from server.schema.kinds import ElementType, Lane, Role, RunStatus, StageRunStatus, StageSemantic
from server.schema.messages import Message, element_messages
from server.schema.relay import Connection, Node
from server.services import triggers as trigger_service
from server.services.access import Actor, can_see_element
from server.services.elements import MAX_DEAL_CONTACTS
from server.services.paging import MAX_PAGE, page_size

DATA_SHOWN = 16_000  # characters of an activation's event data shown; a webhook payload may be far longer


def jsonable(value: Any) -> Any:
    """JSON-ish values with Decimals and dates as text."""
    return to_jsonable_python(value)


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.01")))


@strawberry.type
class User(Node):
    id: strawberry.ID
    name: str
    email: str
    role: Role
    supervisor_id: strawberry.ID | None
    timezone: str
    locale: str | None = strawberry.field(description="The admin's language (en, de); null: the instance default.")
    absent: bool
    active: bool

    @classmethod
    def of(cls, row: models.User) -> "User":
        return cls(id=gid(row.id), name=row.name, email=row.email, role=Role(row.role),
                   supervisor_id=opt_gid(row.supervisor_id), timezone=row.timezone, locale=row.locale,
                   absent=row.absent, active=row.active)


# Clients: contacts and companies, with typed email addresses and phone numbers.

strawberry.enum(AddressType, name="ClientAddressType",
                description="What an email address (work, home, other) or phone number (also mobile) is for.")


@strawberry.type(description="One email address or phone number of a client, with its type.")
class ClientAddress:
    value: str
    type: AddressType

    @classmethod
    def list_of(cls, entries: list[dict[str, str]] | None) -> list["ClientAddress"]:
        return [cls(value=e["value"], type=AddressType(e["type"])) for e in entries or []]


def _values(entries: list[dict[str, str]] | None) -> list[str]:
    return [e["value"] for e in entries or []]


@strawberry.type
class Contact(Node):
    id: strawberry.ID
    name: str
    emails: list[str] = strawberry.field(description="The email addresses, first first (emailAddresses has types).")
    phones: list[str] = strawberry.field(description="The phone numbers in E.164, first first.")
    email_addresses: list[ClientAddress]
    phone_numbers: list[ClientAddress]
    company_id: strawberry.ID | None
    responsible_id: strawberry.ID | None
    custom: JSON

    @classmethod
    def of(cls, row: models.Contact) -> "Contact":
        return cls(id=gid(row.id), name=row.name, emails=_values(row.emails), phones=_values(row.phones),
                   email_addresses=ClientAddress.list_of(row.emails), phone_numbers=ClientAddress.list_of(row.phones),
                   company_id=opt_gid(row.company_id), responsible_id=opt_gid(row.responsible_id),
                   custom=jsonable(row.custom))


@strawberry.type
class Company(Node):
    id: strawberry.ID
    name: str
    emails: list[str] = strawberry.field(description="The email addresses, first first (emailAddresses has types).")
    phones: list[str] = strawberry.field(description="The phone numbers in E.164, first first.")
    email_addresses: list[ClientAddress]
    phone_numbers: list[ClientAddress]
    responsible_id: strawberry.ID | None
    custom: JSON

    @classmethod
    def of(cls, row: models.Company) -> "Company":
        return cls(id=gid(row.id), name=row.name, emails=_values(row.emails), phones=_values(row.phones),
                   email_addresses=ClientAddress.list_of(row.emails), phone_numbers=ClientAddress.list_of(row.phones),
                   responsible_id=opt_gid(row.responsible_id), custom=jsonable(row.custom))


# Triggers: a stage's, and what their events did to an element (the queries and mutations: schema/triggers.py).

def json_as_sent(value: Any) -> Any:
    """JSON as stored or as a client sent it (the service checks its shape and names the field it refuses)."""
    return value


async def _stage(info: Info, stage_id: int | None) -> "Stage | None":
    if stage_id is None:
        return None
    row = await context_of(info).loaders.stage.load(stage_id)
    return None if row is None else Stage.of(row)



@strawberry.type
class Trigger:
    """When its event happens to an element of the pipeline, the element moves into `stage` (whose rules run)."""

    id: strawberry.ID
    stage_id: strawberry.ID
    name: str
    trigger_type: str = strawberry.field(description="A key of `triggerTypes`.")
    settings: JSON
    condition: JSON
    allow_back: bool = strawberry.field(description="It may move an element back from a later stage.")
    run_as_id: strawberry.ID | None
    enabled: bool
    position: int
    description: str = strawberry.field(description="The trigger in words: its event and its condition.")
    url: strawberry.Private[str | None]

    @strawberry.field
    async def stage(self, info: Info) -> "Stage":
        stage = await _stage(info, int(self.stage_id))
        assert stage is not None  # a trigger's stage is a cascading foreign key
        return stage

    @strawberry.field(description="An inbound webhook trigger's secret URL (POST JSON naming element_type and "
                                  "element_id); admins only, None for others and for other types.")
    def webhook_url(self, info: Info) -> str | None:
        actor = actor_of(info)
        return self.url if isinstance(actor, Actor) and actor.is_admin else None

    @classmethod
    def of(cls, row: models.Trigger) -> "Trigger":
        return cls(id=gid(row.id), stage_id=gid(row.stage_id), name=row.name, trigger_type=row.trigger_type,
                   settings=json_as_sent(row.settings), condition=json_as_sent(row.condition),
                   allow_back=row.allow_back, run_as_id=opt_gid(row.run_as_id), enabled=row.enabled, position=row.position,
                   description=trigger_service.describe_trigger(row), url=trigger_service.webhook_url(row))


@strawberry.type
class TriggerEvaluation:
    """One candidate trigger of an activation: whether it matched, and why not."""

    trigger_id: strawberry.ID
    name: str
    stage_id: strawberry.ID | None
    stage: str = strawberry.field(description="The stage's name when the event was matched.")
    matched: bool
    why: str


def _bounded(data: dict[str, Any]) -> Any:
    """The event's data as stored, or (past DATA_SHOWN characters of JSON) its start as text."""
    text = json.dumps(data, default=str)
    if len(text) <= DATA_SHOWN:
        return data
    return {"truncated": True, "size": len(text), "json": text[:DATA_SHOWN]}


@strawberry.type
class TriggerActivation:
    """An event matched against the triggers of an element's pipeline: which fired, and why the others did not."""

    id: strawberry.ID
    event: str
    outcome: str = strawberry.field(description="moved | no_match | stopped (by the loop guard)")
    reason: str
    trigger_id: strawberry.ID | None
    from_stage_id: strawberry.ID | None
    to_stage_id: strawberry.ID | None
    evaluations: list[TriggerEvaluation]
    data: JSON = strawberry.field(description=f"The event's data (past {DATA_SHOWN} characters of JSON: "
                                              "{truncated, size, json} with the start).")
    created_at: datetime

    @strawberry.field(description="The trigger that fired (None: none did, or it was deleted since).")
    async def trigger(self) -> Trigger | None:
        if self.trigger_id is None:
            return None
        row = await models.Trigger.get_or_none(id=int(self.trigger_id))
        return None if row is None else Trigger.of(row)

    @strawberry.field
    async def from_stage(self, info: Info) -> "Stage | None":
        return await _stage(info, opt_int(self.from_stage_id, "from_stage_id"))

    @strawberry.field
    async def to_stage(self, info: Info) -> "Stage | None":
        return await _stage(info, opt_int(self.to_stage_id, "to_stage_id"))

    @classmethod
    def of(cls, row: models.TriggerActivation) -> "TriggerActivation":
        evaluations = [TriggerEvaluation(trigger_id=gid(e["trigger_id"]), name=e.get("name", ""),
                                         stage_id=opt_gid(e.get("stage_id")), stage=e.get("stage", ""),
                                         matched=bool(e.get("matched")), why=e.get("why", ""))
                       for e in row.evaluations or []]
        return cls(id=gid(row.id), event=row.event, outcome=row.outcome, reason=row.reason,
                   trigger_id=opt_gid(row.trigger_id), from_stage_id=opt_gid(row.from_stage_id),
                   to_stage_id=opt_gid(row.to_stage_id), evaluations=evaluations, data=_bounded(row.data or {}),
                   created_at=row.created_at)



async def element_activations(info: Info, element_type: str, element_id: int, first: int) -> list[TriggerActivation]:
    rows = await trigger_service.activations(element_type, element_id, actor=actor_of(info),
                                             first=page_size(first))
    return [TriggerActivation.of(r) for r in rows]


@strawberry.type
class Stage(Node):
    id: strawberry.ID
    pipeline_id: strawberry.ID
    code: str
    name: str
    position: int
    semantic: StageSemantic
    revision: int

    @strawberry.field
    async def pipeline(self, info: Info) -> "Pipeline":
        row = await context_of(info).loaders.pipeline.load(int(self.pipeline_id))
        assert row is not None  # stage.pipeline_id is a foreign key: the pipeline is there
        return Pipeline.of(row)

    @strawberry.field(description="Admins only (others get a FORBIDDEN error): the triggers that move elements "
                                  "into this stage, in the order they are tried.")
    async def triggers(self, info: Info) -> list[Trigger]:
        rows = await trigger_service.stage_triggers(int(self.id), actor=actor_of(info))
        return [Trigger.of(r) for r in rows]

    @classmethod
    def of(cls, row: models.Stage) -> "Stage":
        return cls(id=gid(row.id), pipeline_id=gid(row.pipeline_id), code=row.code, name=row.name,
                   position=row.position, semantic=StageSemantic(row.semantic), revision=row.revision)


@strawberry.type
class Pipeline(Node):
    id: strawberry.ID
    name: str
    entity_type: ElementType
    is_default: bool

    @strawberry.field
    async def stages(self, info: Info) -> list[Stage]:
        return [Stage.of(s) for s in await context_of(info).loaders.stages_of_pipeline.load(int(self.id))]

    @classmethod
    def of(cls, row: models.Pipeline) -> "Pipeline":
        return cls(id=gid(row.id), name=row.name, entity_type=ElementType(row.entity_type), is_default=row.is_default)


@strawberry.type
class Rule(Node):
    id: strawberry.ID
    stage_id: strawberry.ID
    key: str
    title: str
    position: int
    lane: Lane
    action_type: str
    params: JSON
    condition: JSON
    timing: JSON
    run_as_id: strawberry.ID | None
    enabled: bool
    stop_lane_on_failure: bool
    paused_at: datetime | None = strawberry.field(description="Set while the rule is paused: its due runs wait.")
    pause_reason: str | None = strawberry.field(description="Who paused it and when, or why it paused itself.")

    @classmethod
    def of(cls, row: models.Rule) -> "Rule":
        return cls(
            id=gid(row.id), stage_id=gid(row.stage_id), key=row.key, title=row.title, position=row.position,
            lane=Lane(row.lane), action_type=row.action_type, params=jsonable(row.params),
            condition=jsonable(row.condition), timing=jsonable(row.timing), run_as_id=opt_gid(row.run_as_id),
            enabled=row.enabled, stop_lane_on_failure=row.stop_lane_on_failure, paused_at=row.paused_at,
            pause_reason=row.pause_reason,
        )


@strawberry.type
class StageRules:
    stage_id: strawberry.ID
    rules: list[Rule]


@strawberry.type
class RuleRun(Node):
    id: strawberry.ID
    stage_run_id: strawberry.ID
    rule_id: strawberry.ID
    rule_key: str
    title: str
    action_type: str
    status: RunStatus
    due_at: datetime | None
    attempts: int
    outputs: JSON
    error: str | None
    reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lane: int
    position: int
    element_type: ElementType = strawberry.field(description="What the run's element is: lead or deal.")
    element_id: strawberry.ID = strawberry.field(description="The id of the lead or deal the run belongs to.")

    @strawberry.field(description="The lead or deal the run belongs to (None once it is deleted). Loaded in one "
                                  "batch for a whole list of runs.")
    async def element(self, info: Info) -> "Element | None":
        row = await context_of(info).loaders.element.load((self.element_type, int(self.element_id)))
        if row is None or not can_see_element(actor_of(info), row):
            return None
        return Lead.of(row) if isinstance(row, models.Lead) else Deal.of(row)
    rerun_as_id: strawberry.ID | None = strawberry.field(description="A failed run that was re-run: the new run.")
    own_revision: strawberry.Private[int | None] = None

    @strawberry.field(description="The stage revision the run ran with: its stay's, or (a re-run or backfill) "
                                  "the one in force when it was made.")
    async def revision(self, info: Info) -> int:
        if self.own_revision is not None:
            return self.own_revision
        stay = await context_of(info).loaders.stage_run.load(int(self.stage_run_id))
        return stay.revision if stay is not None else 0

    @classmethod
    def of(cls, row: models.RuleRun) -> "RuleRun":
        return cls(
            element_type=ElementType(row.element_type), element_id=gid(row.element_id),
            rerun_as_id=opt_gid(row.rerun_as_id), own_revision=row.revision,
            id=gid(row.id), stage_run_id=gid(row.stage_run_id), rule_id=gid(row.rule_id), rule_key=row.rule_key,
            title=row.title, action_type=row.action_type, status=RunStatus(row.status), due_at=row.due_at,
            attempts=row.attempts, outputs=jsonable(row.outputs), error=row.error, reason=row.reason,
            created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at,
            lane=row.lane, position=row.position,
        )


@strawberry.type
class TimelineEntry:
    id: strawberry.ID
    kind: str
    text: str
    author_id: strawberry.ID | None
    rule_run_id: strawberry.ID | None
    created_at: datetime

    @classmethod
    def of(cls, row: models.TimelineEntry) -> "TimelineEntry":
        return cls(id=gid(row.id), kind=row.kind, text=row.text, author_id=opt_gid(row.author_id),
                   rule_run_id=opt_gid(row.rule_run_id), created_at=row.created_at)


@strawberry.type
class AuditEntry:
    """One change of one field (or the stage): by whom, and by which rule run if automation did it."""

    id: strawberry.ID
    field: str
    old_value: JSON
    new_value: JSON
    actor_id: strawberry.ID | None
    rule_run_id: strawberry.ID | None
    created_at: datetime

    @classmethod
    def of(cls, row: models.AuditEntry) -> "AuditEntry":
        return cls(id=gid(row.id), field=row.field, old_value=_json_text(row.old_value),
                   new_value=_json_text(row.new_value), actor_id=opt_gid(row.actor_id),
                   rule_run_id=opt_gid(row.rule_run_id), created_at=row.created_at)


def _json_text(value: str | None) -> Any:
    return None if value is None else json.loads(value)


@strawberry.type
class StageRun:
    """One stay of an element in a stage: the pinned rule revision and the causal chain that led there."""

    id: strawberry.ID
    stage_id: strawberry.ID
    revision: int
    status: StageRunStatus
    chain_id: str
    depth: int
    cause: str
    actor_id: strawberry.ID | None
    caused_by_rule_run_id: strawberry.ID | None
    entered_at: datetime
    left_at: datetime | None

    @classmethod
    def of(cls, row: models.StageRun) -> "StageRun":
        return cls(id=gid(row.id), stage_id=gid(row.stage_id), revision=row.revision, status=StageRunStatus(row.status),
                   chain_id=row.chain_id, depth=row.depth, cause=row.cause, actor_id=opt_gid(row.actor_id),
                   caused_by_rule_run_id=opt_gid(row.caused_by_rule_run_id), entered_at=row.entered_at,
                   left_at=row.left_at)


@strawberry.type
class Task:
    id: strawberry.ID
    title: str
    status: str
    responsible_id: strawberry.ID | None
    closed_at: datetime | None

    @classmethod
    def of(cls, row: models.Task) -> "Task":
        return cls(id=gid(row.id), title=row.title, status=row.status,
                   responsible_id=opt_gid(row.responsible_id), closed_at=row.closed_at)


@strawberry.type
class CustomerActivity:
    id: strawberry.ID
    element_type: ElementType
    element_id: strawberry.ID
    kind: str
    text: str
    created_at: datetime

    @classmethod
    def of(cls, row: models.CustomerActivity) -> "CustomerActivity":
        return cls(id=gid(row.id), element_type=ElementType(row.element_type), element_id=gid(row.element_id),
                   kind=row.kind, text=row.text, created_at=row.created_at)


@strawberry.type
class ActionParam:
    name: str
    type: str = strawberry.field(description="The widget kind: template, user, users, stage, pipeline, roles, "
                                             "field_map, mail_sender (an id from `mailSenders`), bool, int, "
                                             "string, choice, list, map.")
    required: bool
    default: JSON | None
    label: str
    choices: list[str]  # a choice's values, or the roles to pick from
    item_type: str | None  # a list's items: int, string, choice
    help: str | None

    @classmethod
    def of(cls, spec: ParamSpec) -> "ActionParam":
        return cls(name=spec.name, type=spec.kind, required=spec.required, default=jsonable(spec.default),
                   label=spec.label, choices=spec.choices, item_type=spec.item_kind, help=spec.help)


@strawberry.type
class ActionType:
    key: str
    title: str
    group: str
    outputs: list[str]
    params: list[ActionParam]
    released_by: list[str]  # the events that end its wait (customer_activity)
    params_schema: JSON = strawberry.field(description=(
        "The params as JSON Schema (draft 2020-12): titles, descriptions, enums, defaults and limits; each "
        "property's `x-pipewright-kind` says what it holds (user, users, stage, pipeline, template, roles, "
        "field_map, mail_sender, document_template, or bool, int, string, choice, list, map)."))

    @classmethod
    def of(cls, action: Action[Any]) -> "ActionType":
        return cls(key=action.key, title=action.title, group=action.group, outputs=list(action.outputs),
                   params=[ActionParam.of(spec) for spec in describe_params(action.Params)],
                   released_by=list(action.released_by), params_schema=jsonable(params_schema(action)))


@strawberry.type(name="DeleteResult")
class Deleted:
    ok: bool
    id: strawberry.ID


def _stage_views(info: Info) -> DataLoader[int, Stage]:
    loaders = context_of(info).loaders

    async def build(ids: Sequence[int]) -> list[Stage]:
        rows = await loaders.stage.load_many(ids)
        assert all(rows)  # an element's stage_id is a restricting foreign key
        return [Stage.of(row) for row in rows if row is not None]

    return loaders.view("stage", build)


def _user_views(info: Info) -> DataLoader[int, User | None]:
    loaders = context_of(info).loaders

    async def build(ids: Sequence[int]) -> list[User | None]:
        return [None if row is None else User.of(row) for row in await loaders.user.load_many(ids)]

    return loaders.view("user", build)


def _company_views(info: Info) -> DataLoader[int, Company | None]:
    loaders = context_of(info).loaders

    async def build(ids: Sequence[int]) -> list[Company | None]:
        return [None if row is None else Company.of(row) for row in await loaders.company.load_many(ids)]

    return loaders.view("company", build)


def _current_run_views(info: Info) -> DataLoader[tuple[str, int], list[RuleRun]]:
    loaders = context_of(info).loaders

    async def build(keys: Sequence[tuple[str, int]]) -> list[list[RuleRun]]:
        return [[RuleRun.of(r) for r in runs] for runs in await loaders.current_runs.load_many(keys)]

    return loaders.view("current_runs", build)


def _deal_contact_views(info: Info) -> DataLoader[int, list[Contact]]:
    loaders = context_of(info).loaders

    async def build(ids: Sequence[int]) -> list[list[Contact]]:
        return [[Contact.of(c) for c in contacts] for contacts in await loaders.deal_contacts.load_many(ids)]

    return loaders.view("deal_contacts", build)


async def _first_contacts(contacts: Awaitable[list[Contact]], size: int) -> list[Contact]:
    return (await contacts)[:size]


@strawberry.interface
class Element(Node):
    """What leads and deals share: where they are, who owns them, and what their rules did."""

    element_type: ClassVar[ElementType]

    id: strawberry.ID
    title: str
    pipeline_id: strawberry.ID
    stage_id: strawberry.ID
    responsible_id: strawberry.ID | None
    company_id: strawberry.ID | None
    amount: str | None
    currency: str
    waiting_for_customer: bool
    custom: JSON
    created_at: datetime

    # The relations a list page shows: plain resolvers returning a view loader's future (see Loaders.view).
    @strawberry.field(graphql_type=Stage)
    def stage(self, info: Info) -> Awaitable[Stage]:
        return _stage_views(info).load(int(self.stage_id))

    @strawberry.field(graphql_type=User | None)
    def responsible(self, info: Info) -> Awaitable[User | None] | None:
        return None if self.responsible_id is None else _user_views(info).load(int(self.responsible_id))

    @strawberry.field(graphql_type=Company | None)
    def company(self, info: Info) -> Awaitable[Company | None] | None:
        return None if self.company_id is None else _company_views(info).load(int(self.company_id))

    @strawberry.field(description="The element's `last` (up to 100) newest rule runs, oldest stage first; "
                                  "`ruleRuns(elementType, elementId)` pages through all of them.")
    async def rule_runs(self, info: Info, last: int = MAX_PAGE) -> list[RuleRun]:
        key = (self.element_type, int(self.id), page_size(last, "last"))
        return [RuleRun.of(r) for r in await context_of(info).loaders.rule_runs.load(key)]

    @strawberry.field(description="The rule runs of the element's current stay in its stage (one per rule).",
                      graphql_type=list[RuleRun])
    def current_runs(self, info: Info) -> Awaitable[list[RuleRun]]:
        return _current_run_views(info).load((self.element_type, int(self.id)))

    @strawberry.field(description="The element's `last` (up to 100) newest timeline entries, oldest first; "
                                  "`timeline(elementType, elementId, after)` reads all of them.")
    async def timeline(self, info: Info, last: int = MAX_PAGE) -> list[TimelineEntry]:
        key = (self.element_type, int(self.id), page_size(last, "last"))
        return [TimelineEntry.of(e) for e in await context_of(info).loaders.timeline.load(key)]

    @strawberry.field(description="The element's messages (sent and received), newest first.")
    async def messages(self, info: Info, first: int = 20, after: str | None = None) -> Connection[Message]:
        return await element_messages(info, self.element_type, int(self.id), first=first, after=after)

    @strawberry.field(description="The element's `first` (up to 100) newest trigger activations: which trigger "
                                  "moved it, and why the others did not.")
    async def trigger_activations(self, info: Info, first: int = 20) -> list[TriggerActivation]:
        return await element_activations(info, self.element_type, int(self.id), first)


def _common(row: models.Lead | models.Deal) -> dict[str, Any]:
    return {
        "id": gid(row.id), "title": row.title, "pipeline_id": gid(row.pipeline_id), "stage_id": gid(row.stage_id),
        "responsible_id": opt_gid(row.responsible_id), "company_id": opt_gid(row.company_id),
        "amount": money(row.amount), "currency": row.currency, "waiting_for_customer": row.waiting_for_customer,
        "custom": jsonable(row.custom), "created_at": row.created_at,
    }


@strawberry.type
class Lead(Element):
    element_type: ClassVar[ElementType] = ElementType.lead

    contact_id: strawberry.ID | None
    source: str
    is_repeat: bool

    @strawberry.field
    async def contact(self, info: Info) -> Contact | None:
        if self.contact_id is None:
            return None
        row = await context_of(info).loaders.contact.load(int(self.contact_id))
        return None if row is None else Contact.of(row)

    @classmethod
    def of(cls, row: models.Lead) -> "Lead":
        return cls(**_common(row), contact_id=opt_gid(row.contact_id), source=row.source, is_repeat=row.is_repeat)


@strawberry.type
class Deal(Element):
    element_type: ClassVar[ElementType] = ElementType.deal

    close_date: date | None

    @strawberry.field
    async def contact_ids(self, info: Info, first: int = MAX_DEAL_CONTACTS) -> list[strawberry.ID]:
        contacts = await context_of(info).loaders.deal_contacts.load(int(self.id))
        return [gid(c.id) for c in contacts[:page_size(first)]]

    @strawberry.field(description="The deal's contacts in order (at most 20); the first is the one templates use.",
                      graphql_type=list[Contact])
    def contacts(self, info: Info, first: int = MAX_DEAL_CONTACTS) -> Awaitable[list[Contact]]:
        size = page_size(first)
        contacts = _deal_contact_views(info).load(int(self.id))
        return contacts if size >= MAX_DEAL_CONTACTS else _first_contacts(contacts, size)

    @classmethod
    def of(cls, row: models.Deal) -> "Deal":
        return cls(**_common(row), close_date=row.close_date)


@strawberry.type
class ApiToken:
    id: strawberry.ID
    name: str
    user_id: strawberry.ID
    prefix: str = strawberry.field(description="The first characters of the secret, to recognise it.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: models.ApiToken) -> "ApiToken":
        return cls(id=gid(row.id), name=row.name, user_id=gid(row.user_id), prefix=row.prefix,
                   created_at=row.created_at, last_used_at=row.last_used_at, revoked_at=row.revoked_at)


@strawberry.type
class NewApiToken:
    token: ApiToken
    secret: str = strawberry.field(description="Shown once: store it now, it cannot be read again.")
