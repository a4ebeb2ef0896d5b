"""Triggers in GraphQL: the trigger catalogue, a stage's triggers (admins configure them), the activations that
explain why an element moved or did not, and recording a payment (the event "payment received" triggers
listen to). services/triggers.py and services/payments.py decide who may do what."""

import json
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from server import models
from server.errors import ValidationFailed
from server.rules.actions.params import describe_params
from server.rules.triggers import registry
from server.rules.triggers.base import TriggerType as Kind
from server.schema.context import actor_of, context_of
from server.schema.errors import ForbiddenError, NotFoundError, ValidationError, result_of
from server.schema.ids import gid, opt_gid, opt_int, to_int
from server.schema.kinds import ElementType
from server.schema.types import ActionParam, Trigger, TriggerActivation, element_activations, json_as_sent
from server.services import payments as payment_service
from server.services import triggers as trigger_service
from server.services.access import Actor
from server.services.paging import MAX_PAGE, page_size



@strawberry.type(name="TriggerType")
class TriggerKind:
    """A kind of event a trigger listens to, the settings it takes (described like an action's params) and the
    event's data a condition may compare as `event.<name>`."""

    key: str
    title: str
    event: str
    data_fields: list[str]
    example_description: str = strawberry.field(description="What its example trigger says, in words.")
    kind: strawberry.Private[Kind[Any]]

    @strawberry.field(description="The settings' fields, as `actionTypes` describes params.")
    def settings(self) -> list[ActionParam]:
        return [ActionParam.of(spec) for spec in describe_params(self.kind.Settings)]

    @classmethod
    def of(cls, kind: Kind[Any]) -> "TriggerKind":
        example = kind.describe(kind.Settings.model_validate(kind.example.settings))
        return cls(key=kind.key, title=kind.title, event=kind.event, data_fields=list(kind.data_fields),
                   example_description=example, kind=kind)


@strawberry.type
class StageTriggers:
    stage_id: strawberry.ID
    triggers: list[Trigger]


@strawberry.type
class PaymentElement:
    type: ElementType
    id: strawberry.ID


@strawberry.type
class Payment:
    """A payment received for a lead or deal."""

    id: strawberry.ID
    element: PaymentElement
    amount: str
    currency: str
    reference: str
    received_at: datetime
    duplicate: bool = strawberry.field(description="The idempotency key was known: this is the payment it "
                                                   "recorded first, and nothing happened again.")

    @classmethod
    def of(cls, recorded: tuple[models.Payment, bool]) -> "Payment":
        row, new = recorded
        return cls(id=gid(row.id), element=PaymentElement(type=ElementType(row.element_type), id=gid(row.element_id)),
                   amount=str(row.amount), currency=row.currency, reference=row.reference,
                   received_at=row.received_at, duplicate=not new)


@strawberry.input
class TriggerInput:
    """Fields left out keep their value on update. `settings` as the type's `settings` describe them;
    `condition` an OR of AND groups like a rule's, on the element and on `event.<name>`."""

    trigger_type: str | None = None
    name: str | None = None
    settings: JSON | None = None
    condition: JSON | None = None
    allow_back: bool | None = None
    run_as_id: strawberry.ID | None = None
    clear_run_as: bool = False
    enabled: bool | None = None

    def to_service(self) -> trigger_service.TriggerInput:
        # settings and condition go as sent: the service checks their shape and names the field it refuses
        return trigger_service.TriggerInput(
            trigger_type=self.trigger_type, name=self.name, settings=json_as_sent(self.settings),
            condition=json_as_sent(self.condition),
            allow_back=self.allow_back, run_as_id=opt_int(self.run_as_id, "run_as_id"),
            clear_run_as=self.clear_run_as, enabled=self.enabled)


Refusals = ValidationError | NotFoundError | ForbiddenError
TriggerResult = Annotated[Trigger | Refusals, strawberry.union("TriggerResult")]
StageTriggersResult = Annotated[StageTriggers | Refusals, strawberry.union("StageTriggersResult")]
TriggersLookup = Annotated[StageTriggers | Refusals, strawberry.union("TriggersLookup")]
PaymentResult = Annotated[Payment | Refusals, strawberry.union("PaymentResult")]


@strawberry.type
class TriggerDeleted:
    ok: bool
    id: strawberry.ID


TriggerDeleteResult = Annotated[TriggerDeleted | Refusals, strawberry.union("TriggerDeleteResult")]


def _of_stage(stage_id: int) -> Any:
    def present(rows: list[models.Trigger]) -> StageTriggers:
        return StageTriggers(stage_id=gid(stage_id), triggers=[Trigger.of(r) for r in rows])

    return present


@strawberry.type
class TriggerQuery:
    @strawberry.field(description="Every kind of trigger, with its settings and the event data it offers.")
    def trigger_types(self, info: Info) -> list[TriggerKind]:
        actor_of(info)
        return [TriggerKind.of(kind) for kind in registry().values()]

    @strawberry.field(description="Admins only: a stage's triggers, in the order they are tried.")
    async def triggers(self, info: Info, stage_id: strawberry.ID) -> TriggersLookup:
        actor = actor_of(info)
        stage = to_int(stage_id, "stage_id")
        return await result_of(lambda: trigger_service.stage_triggers(stage, actor=actor), _of_stage(stage))

    @strawberry.field(description="An element's trigger activations, newest first (at most `first`, up to "
                                  f"{MAX_PAGE}): which trigger moved it, and why the others did not.")
    async def trigger_activations(self, info: Info, element_type: str, element_id: strawberry.ID,
                                  first: int = 20) -> list[TriggerActivation]:
        return await element_activations(info, element_type, to_int(element_id, "element_id"), first)


@strawberry.type
class TriggerMutation:
    @strawberry.mutation(description="Admins only. A trigger on the stage, tried after its others.")
    async def create_trigger(self, info: Info, stage_id: strawberry.ID, input: TriggerInput) -> TriggerResult:
        actor = actor_of(info)
        return await result_of(lambda: trigger_service.create_trigger(
            to_int(stage_id, "stage_id"), input.to_service(), actor=actor), Trigger.of)

    @strawberry.mutation(description="Admins only.")
    async def update_trigger(self, info: Info, id: strawberry.ID, input: TriggerInput) -> TriggerResult:
        actor = actor_of(info)
        return await result_of(lambda: trigger_service.update_trigger(
            to_int(id, "id"), input.to_service(), actor=actor), Trigger.of)

    @strawberry.mutation(description="Admins only. Its activations stay in the elements' history.")
    async def delete_trigger(self, info: Info, id: strawberry.ID) -> TriggerDeleteResult:
        actor = actor_of(info)
        trigger_id = to_int(id, "id")

        async def delete() -> TriggerDeleted:
            await trigger_service.delete_trigger(trigger_id, actor=actor)
            return TriggerDeleted(ok=True, id=gid(trigger_id))

        return await result_of(delete)

    @strawberry.mutation(description="Admins only. The stage's triggers in their new order; name each once.")
    async def reorder_triggers(self, info: Info, stage_id: strawberry.ID,
                               trigger_ids: list[strawberry.ID]) -> StageTriggersResult:
        actor = actor_of(info)
        stage = to_int(stage_id, "stage_id")
        if len(trigger_ids) > trigger_service.MAX_TRIGGERS_PER_STAGE:
            return ValidationError.of(ValidationFailed.one(
                "trigger_ids", f"a stage has at most {trigger_service.MAX_TRIGGERS_PER_STAGE} triggers"))
        return await result_of(lambda: trigger_service.reorder_triggers(
            stage, [to_int(t, "trigger_ids") for t in trigger_ids], actor=actor), _of_stage(stage))

    @strawberry.mutation(description="Admins only. A new secret URL for an inbound webhook trigger: the old one "
                                     "stops working at once.")
    async def rotate_trigger_webhook(self, info: Info, id: strawberry.ID) -> TriggerResult:
        actor = actor_of(info)
        return await result_of(lambda: trigger_service.rotate_webhook_url(to_int(id, "id"), actor=actor),
                               Trigger.of)

    @strawberry.mutation(description="A payment received for a lead or deal, by whoever may work on it: on its "
                                     "timeline, and the event payment received triggers listen to. The same "
                                     "`idempotencyKey` again answers the first payment and records nothing.")
    async def record_payment(self, info: Info, element_type: str, element_id: strawberry.ID, amount: str,
                             currency: str = "", reference: str = "",
                             idempotency_key: str | None = None) -> PaymentResult:
        actor = actor_of(info)
        element = to_int(element_id, "element_id")
        return await result_of(lambda: payment_service.record_payment(
            element_type, element, amount=amount, currency=currency, reference=reference,
            idempotency_key=idempotency_key, actor=actor), Payment.of)
