"""Matching an event against the triggers of an element's pipeline, and moving the element (SPEC §5).

On an event for an element at stage S, the candidates are the triggers listening to the event on the stages
after S, in stage order, then those on earlier stages that allow moving back, nearest first; triggers on S
itself never fire (the element is there already). The first candidate whose settings and condition match
wins; the engine moves the element (`engine.fire_triggers`) through its one enter-stage path: the old stage's
pending runs are cancelled and the new stage's rules start. One trigger per event and element. Each evaluation is a `TriggerActivation` row
saying which trigger fired and why each other candidate did not.

An event on a contact or company reaches each of their open leads and deals (not those in a success or
failure stage). This module decides; `engine.fire_triggers`, called in the transaction of the change that is the
event, moves and records.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.db import column
from server.kinds import ElementType, StageSemantic
from server.models import Deal, DealContact, Element, Lead, Stage, Trigger, TriggerActivation
from server.rules import conditions, elements
from server.rules.metadata import METADATA
from server.rules.triggers import get_trigger_type, listening_to
from server.rules.triggers.base import Event

__all__ = ["Decision", "Event", "Occurrence", "decide", "reached"]

MAX_DATA_CHARS = 20_000  # the event data kept on an activation (a webhook payload may be large)
MAX_WHY_CHARS = 500  # one evaluation's words: a condition's explanation quotes the event's value, however long


@dataclass(frozen=True)
class Occurrence:
    """An event and whom it happened to: an element, or a contact or company (reaching their open elements)."""

    event: Event
    element_type: str | None = None
    element_id: int | None = None
    client_type: str | None = None  # contact | company
    client_id: int | None = None
    rule_run_id: int | None = None  # a rule run caused it: a move continues that run's chain
    only_trigger_id: int | None = None  # an inbound webhook trigger's own URL: only that trigger is a candidate
    idempotency_key: str | None = None
    skip_elements: Sequence[tuple[str, int]] = field(default_factory=tuple)


@dataclass
class Decision:
    """What an event does to one element: the activation to record, and the trigger that won (if any)."""

    element: Element
    activation: TriggerActivation
    winner: Trigger | None = None
    target: Stage | None = None


async def reached(occurrence: Occurrence) -> list[tuple[str, int]]:
    """The elements an occurrence reaches, or none when no trigger type listens to its event."""
    if not listening_to(occurrence.event.kind):
        return []
    return [e for e in await _reached(occurrence) if e not in occurrence.skip_elements]


async def _reached(occurrence: Occurrence) -> list[tuple[str, int]]:
    if occurrence.element_type and occurrence.element_id:
        return [(occurrence.element_type, occurrence.element_id)]
    if not occurrence.client_type or not occurrence.client_id:
        return []
    open_stages = await column(Stage.filter(semantic=StageSemantic.in_progress), "id")
    if occurrence.client_type == "contact":
        leads = await Lead.filter(contact_id=occurrence.client_id, stage_id__in=open_stages).order_by("id")
        deal_ids = await column(DealContact.filter(contact_id=occurrence.client_id), "deal_id")
        deals = await Deal.filter(id__in=deal_ids, stage_id__in=open_stages).order_by("id")
    else:
        leads = await Lead.filter(company_id=occurrence.client_id, stage_id__in=open_stages).order_by("id")
        deals = await Deal.filter(company_id=occurrence.client_id, stage_id__in=open_stages).order_by("id")
    reached: list[tuple[str, int]] = [(ElementType.lead, lead.id) for lead in leads]
    return reached + [(ElementType.deal, deal.id) for deal in deals]


async def decide(occurrence: Occurrence, element_type: str, element_id: int) -> Decision | None:
    """Match the event against the triggers of the element's pipeline (the element row locked); None when no
    trigger listens to it there."""
    element = await elements.load(element_type, element_id, lock=True)
    listening = listening_to(occurrence.event.kind)
    triggers = [trigger for trigger in await METADATA.pipeline_triggers(element.pipeline_id)
                if trigger.trigger_type in listening
                and occurrence.only_trigger_id in (None, trigger.id)]
    if not triggers:
        return None
    stages = await METADATA.pipeline_stages(element.pipeline_id)
    order = {stage.id: index for index, stage in enumerate(stages)}
    here = order.get(element.stage_id, -1)
    by_id = {stage.id: stage for stage in stages}
    forward = sorted((t for t in triggers if order[t.stage_id] > here), key=lambda t: (order[t.stage_id], t.position, t.id))
    back = sorted((t for t in triggers if order[t.stage_id] < here), key=lambda t: (-order[t.stage_id], t.position, t.id))
    evaluations: list[dict[str, Any]] = []
    for trigger in triggers:
        if trigger.stage_id == element.stage_id:
            evaluations.append(_evaluation(trigger, by_id, False, "the element is in its stage already"))
    winner: Trigger | None = None
    context: dict[str, Any] | None = None
    for trigger in [*forward, *back]:
        if winner is not None:
            evaluations.append(_evaluation(trigger, by_id, False, f"not tried: “{winner.name}” fired first"))
            continue
        if order[trigger.stage_id] < here and not trigger.allow_back:
            evaluations.append(_evaluation(trigger, by_id, False, "its stage is behind the element's and it does "
                                                                  "not allow moving back"))
            continue
        why_not, context = await _why_not(trigger, occurrence.event, element_type, element, context)
        evaluations.append(_evaluation(trigger, by_id, why_not is None, why_not or "matched"))
        if why_not is None:
            winner = trigger
    activation = TriggerActivation(
        element_type=element_type, element_id=element.id, event=occurrence.event.kind,
        data=_bounded(occurrence.event.data), from_stage_id=element.stage_id, evaluations=evaluations,
        idempotency_key=occurrence.idempotency_key, outcome="no_match",
        reason="no trigger matched" if triggers else "",
    )
    if winner is None:
        return Decision(element, activation)
    activation.trigger_id, activation.to_stage_id = winner.id, winner.stage_id
    return Decision(element, activation, winner, by_id[winner.stage_id])


async def _why_not(trigger: Trigger, event: Event, element_type: str, element: Element,
                   context: dict[str, Any] | None) -> tuple[str | None, dict[str, Any] | None]:
    trigger_type = get_trigger_type(trigger.trigger_type)
    if trigger_type is None:
        return f"unknown trigger type '{trigger.trigger_type}'", context
    why_not = trigger_type.matches(trigger_type.Settings.model_validate(trigger.settings or {}), event)
    if why_not is not None or not trigger.condition:
        return why_not, context
    if context is None:
        data = await elements.build_context(element_type, element)
        context = {**data, element_type: data, "element": data, "event": event.data}
    met, explanation = conditions.evaluate(
        [[conditions.Comparison.model_validate(c) for c in group] for group in trigger.condition], context)
    return (None if met else explanation), context


def _evaluation(trigger: Trigger, stages: dict[int, Stage], matched: bool, why: str) -> dict[str, Any]:
    return {"trigger_id": trigger.id, "name": trigger.name, "stage_id": trigger.stage_id,
            "stage": stages[trigger.stage_id].name, "matched": matched,
            "why": why if len(why) <= MAX_WHY_CHARS else why[:MAX_WHY_CHARS - 1] + "…"}


def _bounded(data: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(data, default=str)
    return data if len(text) <= MAX_DATA_CHARS else {"truncated": text[:MAX_DATA_CHARS]}
