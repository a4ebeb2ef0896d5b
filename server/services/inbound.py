"""What customers send (mail, calls, SMS replies, chat messages, forms): matched to the CRM's clients and their
open leads and deals, stored once, put on their timelines, and counted as customer activity, so a Wait rule of
each element reached ends ("ended by: email").

Mail and calls from an address or number on the exception list are not stored: the entry's counter goes up.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tortoise.expressions import F
from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError

from server import clock
from server.channels.outbox import message_event, new_uid, normalised
from server.db import column, transaction
from server.errors import ValidationFailed
from server.kinds import Channel, Direction, ElementType, MessageStatus, StageSemantic
from server.models import (
    Company,
    Contact,
    CustomerActivity,
    Deal,
    DealContact,
    Element,
    ExceptionEntry,
    Lead,
    Message,
    Stage,
    model_for,
)
from server.rules import elements, engine
from server.rules.actions.base import CUSTOMER_ACTIVITY
from server.rules.triggering import Event, Occurrence
from server.rules.triggers.base import CALL, CHAT_MESSAGE, EMAIL_RECEIVED, FORM_SUBMITTED

# What each channel counts as, in CustomerActivity.kind (the recordCustomerActivity kinds).
ACTIVITY_KIND = {Channel.email: "email", Channel.call: "call", Channel.sms: "message", Channel.chat: "message",
                 Channel.form: "form"}
TIMELINE_TEXT_CHARS = 4000


class RecordingInProgress(ValidationFailed):
    """A concurrent delivery with the same idempotency key is being recorded: this one's transaction is rolled
    back, and running it again answers the other's recording."""


@dataclass
class Inbound:
    """One thing a customer sent, as a channel's face parsed it."""

    channel: Channel
    sender: str  # an email address or an E.164 number
    recipient: str = ""
    subject: str = ""
    text: str = ""
    html: str = ""
    header_message_id: str = ""  # the sender's Message-ID (mail)
    replied_uids: Sequence[str] = ()  # uids of our messages it answers (In-Reply-To / References)
    idempotency_key: str | None = None  # a webhook delivery's key: a retry is the same delivery
    meta: dict[str, Any] = field(default_factory=dict)
    summary: str = ""  # the timeline's first line, e.g. "Missed call from +49 30 1234567"


@dataclass
class Recorded:
    message: Message | None  # None when blocked by the exception list
    elements: list[tuple[str, int]]  # the leads and deals it reached
    blocked: bool = False
    duplicate: bool = False  # the same idempotency key was recorded before: nothing new happened


async def blocked_by_exception(sender: str) -> bool:
    """An exception entry for `sender`: counted (in one statement), and the caller stores nothing."""
    return bool(await ExceptionEntry.filter(value=normalised(sender)).update(
        blocked_count=F("blocked_count") + 1, last_blocked_at=clock.utcnow()))


async def clients_with(address: str) -> list[Contact | Company]:
    """Contacts and companies with this email address or phone number.

    The lists are JSON columns, so the database pre-filters on their text (a parameterised LIKE for the quoted
    value, as SQLite stores it with \\u escapes and PostgreSQL's jsonb prints it without) and the exact entry is
    checked here.
    """
    wanted = normalised(address)
    found: list[Contact | Company] = []
    for model in (Contact, Company):
        ids = await _ids_mentioning(model._meta.db_table, wanted)
        for row in await model.filter(id__in=ids).order_by("id") if ids else []:
            values = [normalised(v) for v in _values(row.emails) + _values(row.phones)]
            if wanted in values:
                found.append(row)
    return found


def _values(entries: Sequence[Any] | None) -> list[str]:
    return [e if isinstance(e, str) else str(e.get("value", "")) for e in entries or []]


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def _ids_mentioning(table: str, wanted: str) -> list[int]:
    """Ids of the rows (at most 50) whose emails or phones JSON text holds `wanted` as a quoted string."""
    connection = get_connection("default")
    marks = ("$1", "$2") if connection.capabilities.dialect == "postgres" else ("?", "?")
    patterns = [_like(json.dumps(wanted)), _like(json.dumps(wanted, ensure_ascii=False))]
    where = " OR ".join(f"lower(CAST({column} AS TEXT)) LIKE {mark} ESCAPE '\\'"
                        for column in ("emails", "phones") for mark in marks)
    params = patterns if marks[0] == "$1" else patterns * 2  # numbered marks repeat, question marks do not
    _, rows = await connection.execute_query(f"SELECT id FROM {table} WHERE {where} ORDER BY id LIMIT 50", params)
    return [int(row["id"]) for row in rows]


async def open_elements_of(clients: Sequence[Contact | Company]) -> list[tuple[str, Element]]:
    """The leads and deals of these clients that are still open (their stage is in progress), oldest first."""
    open_stages = await column(Stage.filter(semantic=StageSemantic.in_progress), "id")
    contact_ids = [c.id for c in clients if isinstance(c, Contact)]
    company_ids = [c.id for c in clients if isinstance(c, Company)]
    reached: list[tuple[str, Element]] = []
    leads = await Lead.filter(stage_id__in=list(open_stages)).filter(
        _any_of(contact_id__in=contact_ids, company_id__in=company_ids)).order_by("id").limit(50)
    reached += [(ElementType.lead, lead) for lead in leads]
    deal_ids = set(await column(DealContact.filter(contact_id__in=contact_ids), "deal_id")) if contact_ids else set()
    deals = await Deal.filter(stage_id__in=list(open_stages)).filter(
        _any_of(id__in=list(deal_ids), company_id__in=company_ids)).order_by("id").limit(50)
    reached += [(ElementType.deal, deal) for deal in deals]
    return reached


def _any_of(**lookups: list[int]) -> Any:
    from tortoise.expressions import Q

    q = Q(id__in=[])
    for lookup, ids in lookups.items():
        if ids:
            q |= Q(**{lookup: ids})  # type: ignore[arg-type]  # Q's stub types **kwargs as str
    return q


async def replied_to(uids: Sequence[str]) -> Message | None:
    """Our outbound message an inbound one answers, from the uids in its In-Reply-To / References."""
    if not uids:
        return None
    return await Message.filter(uid__in=list(uids)[:20], direction=Direction.outbound).order_by("-id").first()


async def record(inbound: Inbound, *, unknown_sender: str = "refuse") -> Recorded:
    """Store what a customer sent and make it customer activity on every open lead and deal it reaches.

    `unknown_sender`: "refuse" (a ValidationFailed naming the sender) or "keep" (stored without an element,
    for the caller to make a lead of). A known idempotency key answers the first recording, changing nothing.
    """
    async with transaction():
        if inbound.idempotency_key:
            first = await Message.get_or_none(channel=inbound.channel, idempotency_key=inbound.idempotency_key)
            if first is not None:
                return Recorded(first, [tuple(e) for e in first.meta.get("elements", [])], duplicate=True)
        if await blocked_by_exception(inbound.sender):
            return Recorded(None, [], blocked=True)
        reached: list[tuple[str, Element]] = []
        reply = await replied_to(inbound.replied_uids)
        if reply is not None and reply.element_type and reply.element_id:
            target = await model_for(reply.element_type).get_or_none(id=reply.element_id)
            if target is not None:
                reached.append((reply.element_type, target))
        for element_type, other in await open_elements_of(await clients_with(inbound.sender)):
            if (element_type, other.id) not in [(t, e.id) for t, e in reached]:
                reached.append((element_type, other))
        if not reached and unknown_sender == "refuse":
            raise ValidationFailed.one("sender", f"{inbound.sender} is not the address of a contact or company with an "
                                                 f"open lead or deal, nor a reply to a message we sent")
        message = await _store(inbound, reply, reached)
        for element_type, reached_element in reached:
            await _customer_activity(inbound, message, element_type, reached_element)
    return Recorded(message, [(t, e.id) for t, e in reached])


async def _store(inbound: Inbound, reply: Message | None, reached: list[tuple[str, Element]]) -> Message:
    first = reached[0] if reached else None
    try:
        message = await Message.create(
            uid=new_uid(), direction=Direction.inbound, channel=inbound.channel, status=MessageStatus.received,
            sender=inbound.sender, recipient=inbound.recipient, subject=inbound.subject[:998], text=inbound.text,
            html=inbound.html, header_message_id=inbound.header_message_id[:998],
            idempotency_key=inbound.idempotency_key, in_reply_to_id=reply.id if reply else None,
            element_type=first[0] if first else None, element_id=first[1].id if first else None,
            meta={**inbound.meta, "elements": [[t, e.id] for t, e in reached]},
        )
    except IntegrityError:  # the same key, recorded by a concurrent delivery a moment ago
        raise RecordingInProgress.one("idempotency_key", "this delivery is being recorded already; retry to get its answer") from None
    await message_event(message)
    return message


async def link(inbound: Inbound, message: Message, element_type: str, element: Element) -> None:
    """A message recorded without an element (unknown sender, "keep") now that the caller made one for it (a web
    form's new lead): linked to it, on its timeline, customer activity there. Inside the recording's transaction."""
    message.element_type, message.element_id = element_type, element.id
    message.meta = {**message.meta, "elements": [*message.meta.get("elements", []), [element_type, element.id]]}
    await message.save(update_fields=["element_type", "element_id", "meta"])
    await message_event(message)
    await _customer_activity(inbound, message, element_type, element)


async def _customer_activity(inbound: Inbound, message: Message, element_type: str, element: Element) -> None:
    kind = ACTIVITY_KIND[inbound.channel]
    summary = inbound.summary or _summary(inbound)
    body = inbound.text.strip()
    text = f"{summary}\n\n{body[:TIMELINE_TEXT_CHARS]}" if body else summary
    await elements.add_timeline_entry(element_type, element.id, "message", text, author_id=None)
    await CustomerActivity.create(element_type=element_type, element_id=element.id, kind=kind, text=summary[:2000])
    for run in await engine.waiting_runs(element_type, element.id, CUSTOMER_ACTIVITY):
        await engine.release_waiting(run, ended_by=inbound.channel.value, outputs={"activity": kind,
                                                                                  "message_id": message.id})
    await elements.element_event(element_type, element, "customer_activity", channel=inbound.channel.value,
                                 message_id=message.id)
    if (event := _trigger_event(inbound, message)) is not None:
        await engine.fire_triggers(Occurrence(event, element_type=element_type, element_id=element.id))


def _trigger_event(inbound: Inbound, message: Message) -> Event | None:
    """What the customer's message is for triggers: incoming email, a call (its direction), a chat message, a web
    form; an SMS reply is customer activity but no trigger type of SPEC §5."""
    meta = inbound.meta
    if inbound.channel == Channel.email:
        return Event(EMAIL_RECEIVED, {"from": inbound.sender, "subject": inbound.subject, "text": inbound.text[:4000],
                                      "message_id": message.id})
    if inbound.channel == Channel.call:
        return Event(CALL, {"direction": meta.get("direction"), "from": meta.get("from"), "to": meta.get("to"),
                            "duration_s": meta.get("duration_s"), "recording_url": meta.get("recording_url")})
    if inbound.channel == Channel.chat:
        return Event(CHAT_MESSAGE, {"from": inbound.sender, "text": inbound.text[:4000]})
    if inbound.channel == Channel.form:
        return Event(FORM_SUBMITTED, {"form": meta.get("form"), "fields": meta.get("fields") or {}})
    return None


def _summary(inbound: Inbound) -> str:
    what = {Channel.email: "Email", Channel.sms: "SMS", Channel.chat: "Chat message", Channel.call: "Call",
            Channel.form: "Form submission"}[inbound.channel]
    subject = f": {inbound.subject}" if inbound.subject else ""
    return f"{what} from {inbound.sender}{subject}"
