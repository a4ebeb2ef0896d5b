"""Saving a stage's triggers (validated settings and condition, like rules' params), the inbound webhook a
trigger of that type listens on, and the activations an element's explain view reads."""

import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from server import i18n
from server.config import settings as app_settings
from server.db import transaction
from server.errors import FieldError, NotFound, ValidationFailed, field_errors
from server.models import Pipeline, Stage, Trigger, TriggerActivation, User
from server.rules import elements, engine, placeholders, revisions
from server.rules.conditions import checked_condition, describe_condition
from server.rules.triggering import Event, Occurrence
from server.rules.triggers import get_trigger_type, registry
from server.rules.triggers.base import WEBHOOK
from server.services.access import Acting, require_admin
from server.services.elements import require_visible

MAX_TRIGGERS_PER_STAGE = 50


@dataclass
class TriggerInput:
    """A trigger as a client submits it; fields left None keep their value on update."""

    trigger_type: str | None = None
    name: str | None = None
    settings: dict[str, Any] | None = None
    condition: list[list[dict[str, Any]]] | None = None
    allow_back: bool | None = None
    run_as_id: int | None = None
    clear_run_as: bool = False
    enabled: bool | None = None


async def _names(stage: Stage, trigger_type: str) -> placeholders.Record:
    """What a trigger's condition may name: the element's fields and `event.<name>` of its type's data."""
    pipeline = await Pipeline.get(id=stage.pipeline_id)
    element = await placeholders.element_record(pipeline.entity_type)
    kind = get_trigger_type(trigger_type)
    data = kind.data_fields if kind else ()
    event = placeholders.Record({name: placeholders.Record(open=True) if name in ("payload", "fields")
                                 else placeholders.Value() for name in data}, hint=f"its data: {', '.join(data)}")
    return placeholders.Record({**element.fields, pipeline.entity_type: element, "element": element, "event": event},
                               hint=f"names start with {pipeline.entity_type}. or event.")


async def _validated(stage: Stage, values: dict[str, Any]) -> dict[str, Any]:
    errors: list[FieldError] = []
    kind = get_trigger_type(values["trigger_type"] or "")
    if kind is None:
        errors.append(FieldError("trigger_type", f"unknown trigger type '{values['trigger_type']}'; one of: "
                                                 f"{', '.join(sorted(registry()))}"))
    name = (values.get("name") or "").strip()
    if not name:
        errors.append(FieldError("name", "give the trigger a name"))
    elif len(name) > 200:
        errors.append(FieldError("name", "must be at most 200 characters"))
    values["name"] = name
    if kind is not None:
        try:
            settings = kind.Settings.model_validate(values["settings"] or {})
            values["settings"] = settings.model_dump(mode="json")
            errors += [FieldError(f"settings.{f}" if f else "settings", m)
                       for f, m in await kind.check(settings, stage_id=stage.id)]
        except ValidationError as exc:
            errors += field_errors(exc, "settings")
    if kind is not None:
        values["condition"], condition_errors = checked_condition(values["condition"] or [],
                                                                  await _names(stage, kind.key))
        errors += condition_errors
    if values.get("run_as_id") is not None and not await User.exists(id=values["run_as_id"]):
        errors.append(FieldError("run_as_id", f"user {values['run_as_id']} does not exist"))
    if errors:
        raise ValidationFailed(errors)
    return values


async def _stage(stage_id: int) -> Stage:
    stage = await Stage.get_or_none(id=stage_id)
    if stage is None:
        raise NotFound("stage", stage_id)
    return stage


async def get_trigger(trigger_id: int) -> Trigger:
    trigger = await Trigger.get_or_none(id=trigger_id)
    if trigger is None:
        raise NotFound("trigger", trigger_id)
    return trigger


async def list_triggers(stage_id: int) -> list[Trigger]:
    return await Trigger.filter(stage_id=stage_id).order_by("position", "id")


async def stage_triggers(stage_id: int, *, actor: Acting) -> list[Trigger]:
    """A stage's triggers in the order they are tried, for admins configuring them."""
    require_admin(actor)
    await _stage(stage_id)
    return await list_triggers(stage_id)


def describe_trigger(trigger: Trigger, names: placeholders.Record | None = None) -> str:
    """A trigger in one sentence, as the board and the API show it: "When a payment of at least 1000 is received
    and amount is at least 1,000.00 €: move here, also backwards"."""
    kind = get_trigger_type(trigger.trigger_type)
    if kind is None:
        when = f"When an event of the unknown trigger type “{trigger.trigger_type}” happens"
    else:
        try:
            when = kind.describe(kind.Settings.model_validate(trigger.settings or {}))
        except ValidationError:
            when = f"{kind.title} (its settings no longer validate: edit the trigger)"
    with i18n.viewing("en", i18n.current_zone.get()):  # one language in the sentence: the trigger's words are English
        only_if = describe_condition(trigger.condition, names)  # names: the element's fields, to type the values
    if only_if:
        when += f" and {only_if}" if len(trigger.condition) == 1 else f" and either {only_if}"
    return f"{when}: move here{', also backwards' if trigger.allow_back else ''}"


def webhook_url(trigger: Trigger) -> str | None:
    """An inbound webhook trigger's secret URL (other types have none)."""
    if trigger.token is None:
        return None
    config = app_settings()
    base = config.public_url.rstrip("/") or f"http://{config.host}:{config.port}"
    return f"{base}/hooks/triggers/{trigger.token}"


async def create_trigger(stage_id: int, data: TriggerInput, *, actor: Acting) -> Trigger:
    require_admin(actor)
    stage = await _stage(stage_id)
    values = await _validated(stage, {
        "trigger_type": data.trigger_type, "name": data.name if data.name is not None else (
            kind.title if (kind := get_trigger_type(data.trigger_type or "")) else ""),
        "settings": data.settings or {}, "condition": data.condition or [], "run_as_id": data.run_as_id,
    })
    async with transaction():
        count = await Trigger.filter(stage_id=stage_id).count()
        if count >= MAX_TRIGGERS_PER_STAGE:
            raise ValidationFailed.one("stage_id", f"a stage may have at most {MAX_TRIGGERS_PER_STAGE} triggers")
        trigger = await Trigger.create(
            stage_id=stage_id, position=count, allow_back=bool(data.allow_back),
            enabled=True if data.enabled is None else data.enabled,
            token=secrets.token_urlsafe(24) if values["trigger_type"] == WEBHOOK else None, **values,
        )
        await revisions.record(stage_id, author_id=actor.user_id, note=f"trigger “{trigger.name}” added")
    return trigger


async def update_trigger(trigger_id: int, data: TriggerInput, *, actor: Acting) -> Trigger:
    require_admin(actor)
    trigger = await get_trigger(trigger_id)
    stage = await _stage(trigger.stage_id)
    values = {name: getattr(data, name) if getattr(data, name) is not None else getattr(trigger, name)
              for name in ("trigger_type", "name", "settings", "condition")}
    values["run_as_id"] = None if data.clear_run_as else data.run_as_id if data.run_as_id is not None else trigger.run_as_id
    values = await _validated(stage, values)
    for name, value in values.items():
        setattr(trigger, name, value)
    if data.allow_back is not None:
        trigger.allow_back = data.allow_back
    if data.enabled is not None:
        trigger.enabled = data.enabled
    if trigger.trigger_type == WEBHOOK and trigger.token is None:
        trigger.token = secrets.token_urlsafe(24)
    elif trigger.trigger_type != WEBHOOK:
        trigger.token = None
    async with transaction():
        await trigger.save()
        await revisions.record(trigger.stage_id, author_id=actor.user_id, note=f"trigger “{trigger.name}” changed")
    return trigger


async def reorder_triggers(stage_id: int, trigger_ids: list[int], *, actor: Acting) -> list[Trigger]:
    """Set the order of a stage's triggers (the order the matcher tries triggers of one stage in); the list
    must name each of them once."""
    require_admin(actor)
    await _stage(stage_id)
    current = await list_triggers(stage_id)
    if sorted(trigger_ids) != sorted(t.id for t in current):
        raise ValidationFailed.one("trigger_ids", "list every trigger of the stage exactly once")
    async with transaction():
        for position, trigger_id in enumerate(trigger_ids):
            await Trigger.filter(id=trigger_id).update(position=position)
        await revisions.record(stage_id, author_id=actor.user_id, note="triggers reordered")
    return await list_triggers(stage_id)


async def delete_trigger(trigger_id: int, *, actor: Acting) -> None:
    require_admin(actor)
    trigger = await get_trigger(trigger_id)
    async with transaction():
        await trigger.delete()
        await revisions.record(trigger.stage_id, author_id=actor.user_id, note=f"trigger “{trigger.name}” deleted")


async def rotate_webhook_url(trigger_id: int, *, actor: Acting) -> Trigger:
    """A new secret URL for an inbound webhook trigger: the old one stops working at once."""
    require_admin(actor)
    trigger = await get_trigger(trigger_id)
    if trigger.trigger_type != WEBHOOK:
        raise ValidationFailed.one("trigger_id", "only an inbound webhook trigger has a URL")
    trigger.token = secrets.token_urlsafe(24)
    await trigger.save(update_fields=["token", "updated_at"])
    return trigger


@dataclass(frozen=True)
class WebhookAnswer:
    activation_id: int | None
    outcome: str
    reason: str
    element_type: str
    element_id: int
    duplicate: bool = False


async def receive_webhook(token: str, payload: dict[str, Any], *, idempotency_key: str | None) -> WebhookAnswer:
    """An inbound webhook trigger's URL was called. The payload names the element (`element_type`, `element_id`);
    the rest is `event.payload` for the trigger's condition. A repeated Idempotency-Key answers the first call's
    answer and moves nothing."""
    from tortoise.exceptions import IntegrityError

    trigger = await _webhook_trigger(token)
    element_type = payload.get("element_type")
    element_id = payload.get("element_id")
    if element_type not in ("lead", "deal"):
        raise ValidationFailed.one("element_type", "must be 'lead' or 'deal'")
    if not isinstance(element_id, int) or isinstance(element_id, bool):
        raise ValidationFailed.one("element_id", "must be the element's id (an integer)")
    key = f"{trigger.id}:{idempotency_key}" if idempotency_key else None
    try:
        return await _fire_webhook(token, element_type, element_id, payload, key)
    except IntegrityError:
        # The same key for another element, saved by a concurrent call after this one looked (the element locks
        # serialise only calls for one element): the unique index refused this one, so answer the first's answer.
        # A trigger or stage deleted while this call ran fails the same way and is no webhook any more.
        first = await TriggerActivation.get_or_none(idempotency_key=key) if key else None
        if first is None:
            await _webhook_trigger(token)
            raise
        return _duplicate(first)


async def _webhook_trigger(token: str) -> Trigger:
    import hmac

    trigger = await Trigger.get_or_none(token=token) if token else None
    if trigger is None or trigger.token is None or not hmac.compare_digest(trigger.token, token):
        raise NotFound("webhook", "trigger")
    return trigger


def _duplicate(first: TriggerActivation) -> WebhookAnswer:
    return WebhookAnswer(first.id, first.outcome, first.reason, first.element_type, first.element_id, duplicate=True)


async def _fire_webhook(token: str, element_type: str, element_id: int, payload: dict[str, Any],
                        key: str | None) -> WebhookAnswer:
    async with transaction():
        try:  # the element row is locked first: a concurrent retry with the same key waits here, then finds it
            element = await elements.load(element_type, element_id, lock=True)
        except NotFound:
            raise ValidationFailed.one("element_id", f"{element_type} {element_id} does not exist") from None
        if key:
            first = await TriggerActivation.get_or_none(idempotency_key=key)
            if first is not None:
                return _duplicate(first)
        # Read again behind the lock: a URL rotated or a trigger (or its stage) deleted meanwhile is no webhook.
        trigger = await _webhook_trigger(token)
        stage = await Stage.get_or_none(id=trigger.stage_id)
        if stage is None:
            raise NotFound("webhook", "trigger")
        if element.pipeline_id != stage.pipeline_id:
            raise ValidationFailed.one("element_id", f"{element_type} {element_id} is not in the pipeline of this "
                                                     "trigger's stage")
        activations = await engine.fire_triggers(Occurrence(
            Event(WEBHOOK, {"payload": payload}), element_type=element_type, element_id=element_id,
            only_trigger_id=trigger.id, idempotency_key=key))
    if not activations:
        return WebhookAnswer(None, "no_match", "the trigger is disabled", element_type, element_id)
    activation = activations[0]
    return WebhookAnswer(activation.id, activation.outcome, activation.reason, element_type, element_id)


async def activations(element_type: str, element_id: int, *, actor: Acting, first: int = 50) -> list[TriggerActivation]:
    """The element's trigger evaluations, newest first: which trigger moved it, and why the others did not."""
    await require_visible(actor, element_type, element_id)
    return await TriggerActivation.filter(element_type=element_type, element_id=element_id).order_by("-id").limit(
        max(1, min(first, 100)))
