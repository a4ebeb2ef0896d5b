"""What each webhook channel's JSON means: calls, SMS replies, chat messages, web forms, SMS delivery receipts,
payments.

`handle` is what the webhook face calls once the delivery has proved itself (services/hooks.py): it checks the
payload, records it, and returns the JSON answer. An `Idempotency-Key` makes a retried delivery answer the first
one's answer and record nothing twice; without the header, a call's `call_id` and an SMS's `id` serve as the key.

Each channel is one block below: a payload model (unknown fields are refused, so a misspelt `recording_ur` is an
error rather than a lost link; every string is bounded) and a handler registered with `@handler("<channel>")`.
"""

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

import phonenumbers
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, StringConstraints, ValidationError

from server.actor import SYSTEM
from server.channels.sms import RECEIPT_STATUSES, record_receipt
from server.config import settings
from server.db import transaction
from server.errors import FieldError, NotFound, ValidationFailed
from server.kinds import Channel, Direction, ElementType, EmailType
from server.models import Company, Contact, Element, Message
from server.rules import clients
from server.rules.clients import phone_type
from server.services import elements as element_service
from server.services import inbound, payments
from server.services.inbound import Inbound, Recorded

Handler = Callable[[dict[str, Any], str | None], Awaitable[dict[str, Any]]]
HANDLERS: dict[str, Handler] = {}

STORED, IGNORED, CREATED_LEAD = "stored", "ignored (exception list)", "created lead"


def handler(channel: str) -> Callable[[Handler], Handler]:
    """Register the function that handles `channel`'s deliveries."""

    def register(function: Handler) -> Handler:
        HANDLERS[channel] = function
        return function

    return register


async def handle(channel: str, payload: dict[str, Any], *, idempotency_key: str | None) -> dict[str, Any]:
    found = HANDLERS.get(channel)
    if found is None:
        raise NotFound("webhook", channel)
    return await found(payload, idempotency_key)


# ---------------------------------------------------------------- what the channels share


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


ModelT = TypeVar("ModelT", bound=Payload)
T = TypeVar("T")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse(model: type[ModelT], payload: dict[str, Any]) -> ModelT:
    """The payload as `model`, or a ValidationFailed naming each field at fault as the sender wrote it."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed([FieldError(".".join(str(p) for p in err["loc"]) or "body",
                                           err["msg"].removeprefix("Value error, ")) for err in exc.errors()]) from None


def e164(number: str, *, field: str) -> str:
    """A phone number in E.164, read in PIPEWRIGHT_DEFAULT_REGION when it has no country code."""
    try:
        return clients.e164(number)
    except clients.NotAPhoneNumber:
        raise ValidationFailed.one(field, f"{number!r} is not a valid phone number (numbers without a country code "
                                          f"are read as {settings().default_region}, PIPEWRIGHT_DEFAULT_REGION)") from None


def e164_or_as_given(number: str) -> str:
    """Our own line in a call (it may be an extension): E.164 when it is a number, else as the provider sent it."""
    try:
        return e164(number, field="")
    except ValidationFailed:
        return number


def shown(number: str) -> str:
    """An E.164 number as people read it: +49 30 1234567."""
    return phonenumbers.format_number(phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def is_email(text: str) -> bool:
    return bool(EMAIL.match(text))


async def once(deliver: Callable[[], Awaitable[T]]) -> T:
    """Run a delivery's recording. When a concurrent delivery with the same key got there first (PostgreSQL:
    the unique key refused our row and rolled our transaction back), the second run finds its message and
    answers it as a duplicate, so both deliveries get the same answer."""
    try:
        return await deliver()
    except inbound.RecordingInProgress:
        return await deliver()


async def record(message: Inbound, *, sender_field: str) -> Recorded:
    """`inbound.record`, with the refusal of an unknown sender naming the payload's field."""
    try:
        return await once(lambda: inbound.record(message))
    except ValidationFailed as exc:
        raise ValidationFailed([FieldError(sender_field if e.field == "sender" else e.field, e.message)
                                for e in exc.errors]) from None


def answer(recorded: Recorded) -> dict[str, Any]:
    """The JSON a provider gets, the same for the first delivery and its retries (but for `duplicate`)."""
    if recorded.message is None:
        return {"message_id": None, "elements": [], "status": IGNORED, "duplicate": False}
    status = CREATED_LEAD if recorded.message.meta.get("created") else STORED
    return {"message_id": recorded.message.id, "elements": [{"type": t, "id": i} for t, i in recorded.elements],
            "status": status, "duplicate": recorded.duplicate}


def key_or(idempotency_key: str | None, name: str, ident: str | None) -> str | None:
    """The delivery's Idempotency-Key, else the provider's own id of the call or SMS."""
    return idempotency_key or (f"{name}:{ident}" if ident else None)


# ---------------------------------------------------------------- calls


class CallPayload(Payload):
    direction: Literal["incoming", "outgoing", "missed"]
    sender: str = Field(alias="from", min_length=1, max_length=64)
    recipient: str = Field(alias="to", min_length=1, max_length=64)
    duration_s: int = Field(default=0, ge=0, le=7 * 24 * 3600, strict=True)
    recording_url: HttpUrl | None = None
    started_at: datetime | None = None
    call_id: str | None = Field(default=None, min_length=1, max_length=100)


def duration(seconds: int) -> str:
    """4 min 12 s, 1 h 0 min 5 s, 38 s."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min {secs} s"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


@handler("calls")
async def calls(payload: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    call = parse(CallPayload, payload)
    # The customer is the caller, except on our outgoing calls.
    customer_field = "to" if call.direction == "outgoing" else "from"
    customer = e164(call.recipient if customer_field == "to" else call.sender, field=customer_field)
    ours = e164_or_as_given(call.sender if customer_field == "to" else call.recipient)
    number_from, number_to = (ours, customer) if customer_field == "to" else (customer, ours)
    recording = str(call.recording_url) if call.recording_url else None
    if call.direction == "missed":
        summary = f"Missed call from {shown(customer)}"
    else:
        summary = (f"Incoming call from {shown(customer)}" if call.direction == "incoming"
                   else f"Outgoing call to {shown(customer)}") + f" ({duration(call.duration_s)})"
    if recording:
        summary += f", recording: {recording}"
    started = call.started_at.astimezone(UTC) if call.started_at and call.started_at.tzinfo else call.started_at
    recorded = await record(Inbound(
        channel=Channel.call, sender=customer, recipient=ours, subject=summary[:998], summary=summary,
        idempotency_key=key_or(idempotency_key, "call_id", call.call_id),
        meta={"direction": call.direction, "duration_s": call.duration_s, "recording_url": recording,
              "from": number_from, "to": number_to, "started_at": started.isoformat() if started else None,
              "call_id": call.call_id},
    ), sender_field=customer_field)
    return answer(recorded)


# ---------------------------------------------------------------- SMS replies


class SmsPayload(Payload):
    sender: str = Field(alias="from", min_length=1, max_length=64)
    recipient: str = Field(default="", alias="to", max_length=64)  # our number or sender id
    text: str = Field(max_length=1600)
    id: str | None = Field(default=None, min_length=1, max_length=100)


@handler("sms")
async def sms(payload: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    reply = parse(SmsPayload, payload)
    customer = e164(reply.sender, field="from")
    recorded = await record(Inbound(
        channel=Channel.sms, sender=customer, recipient=reply.recipient, text=reply.text,
        summary=f"SMS from {shown(customer)}", idempotency_key=key_or(idempotency_key, "id", reply.id),
        meta={"from": customer, "to": reply.recipient, "provider_id": reply.id},
    ), sender_field="from")
    return answer(recorded)


# ---------------------------------------------------------------- chat messages


class ChatPayload(Payload):
    sender: str = Field(alias="from", min_length=1, max_length=320)  # an email, a phone number or a visitor id
    email: str | None = Field(default=None, max_length=320)  # the visitor's, when `from` is a visitor id
    phone: str | None = Field(default=None, max_length=64)
    text: str = Field(min_length=1, max_length=10_000)
    name: str | None = Field(default=None, max_length=200)
    conversation_id: str | None = Field(default=None, max_length=200)


def chat_sender(chat: ChatPayload) -> tuple[str, str]:
    """Who wrote, as (address, payload field): the email address (`from` or `email`) first, since chat widgets
    ask for one and it is the likelier match, else the phone number (`from` or `phone`)."""
    if is_email(chat.sender):
        return chat.sender.lower(), "from"
    if chat.email:
        if not is_email(chat.email):
            raise ValidationFailed.one("email", f"{chat.email!r} is not an email address")
        return chat.email.lower(), "email"
    if chat.phone:
        return e164(chat.phone, field="phone"), "phone"
    try:
        return e164(chat.sender, field="from"), "from"
    except ValidationFailed:
        raise ValidationFailed.one("from", "give an email address or a phone number, or a visitor id with "
                                           "`email` (or `phone`)") from None


@handler("chat")
async def chat(payload: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    message = parse(ChatPayload, payload)
    sender, field = chat_sender(message)
    who = f"{message.name} <{sender}>" if message.name else sender
    recorded = await record(Inbound(
        channel=Channel.chat, sender=sender, text=message.text, summary=f"Chat message from {who}",
        idempotency_key=idempotency_key,
        meta={"from": message.sender, "name": message.name, "conversation_id": message.conversation_id},
    ), sender_field=field)
    return answer(recorded)


# ---------------------------------------------------------------- web forms


def _as_text(value: Any) -> Any:
    """Forms post numbers and check boxes too: kept as the text a person would read."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    return "" if value is None else value


FieldName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
FieldValue = Annotated[str, StringConstraints(max_length=5000), BeforeValidator(_as_text)]
MAX_FORM_FIELDS = 50


class FormPayload(Payload):
    form: str = Field(pattern=r"^[a-z0-9_-]{1,64}$")
    fields: dict[FieldName, FieldValue] = Field(max_length=MAX_FORM_FIELDS)


def form_addresses(fields: dict[str, str]) -> list[str]:
    """The sender's email (lower-cased) and phone (E.164) from the form, in that order; each checked."""
    found: list[str] = []
    email = fields.get("email", "").strip()
    if email:
        if not is_email(email):
            raise ValidationFailed.one("fields.email", f"{email!r} is not an email address")
        found.append(email.lower())
    phone = fields.get("phone", "").strip()
    if phone:
        found.append(e164(phone, field="fields.phone"))
    if not found:
        raise ValidationFailed.one("fields", "give the sender's email or phone (fields.email, fields.phone)")
    return found


@handler("forms")
async def forms(payload: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    form = parse(FormPayload, payload)
    addresses = form_addresses(form.fields)
    return await once(lambda: _submit(form, addresses, idempotency_key))


async def _submit(form: FormPayload, addresses: list[str], idempotency_key: str | None) -> dict[str, Any]:
    """Record the submission; from an unknown sender, make the contact and the lead it is then linked to. One
    transaction: a lead that cannot be made (no lead pipeline) leaves no message and no contact behind."""
    async with transaction():
        known = [a for a in addresses if await inbound.clients_with(a)]
        sender = (known or addresses)[0]  # the address that reaches an existing client, if one does
        message = Inbound(
            channel=Channel.form, sender=sender, subject=f"Web form {form.form}",
            text="\n".join(f"{name}: {value}" for name, value in form.fields.items()),
            summary=f"Web form {form.form} from {sender}", idempotency_key=idempotency_key,
            meta={"form": form.form, "fields": form.fields},
        )
        recorded = await inbound.record(message, unknown_sender="keep")
        if recorded.duplicate or recorded.message is None or recorded.elements:
            return answer(recorded)
        contact, lead = await _lead_from(form, addresses)
        recorded.message.meta = {**recorded.message.meta, "created": {"contact_id": contact.id, "lead_id": lead.id}}
        await inbound.link(message, recorded.message, ElementType.lead, lead)
        return answer(Recorded(recorded.message, [(ElementType.lead, lead.id)]))


async def _lead_from(form: FormPayload, addresses: list[str]) -> tuple[Contact, Element]:
    """A lead in the default lead pipeline's first stage (its rules start), with the sender as its contact: an
    existing contact with one of the addresses (no open lead or deal, else the form had reached it: a repeat
    customer), else a new one."""
    email = next((a for a in addresses if "@" in a), None)
    phone = next((a for a in addresses if "@" not in a), None)
    clients = [c for a in addresses for c in await inbound.clients_with(a)]
    contact = next((c for c in clients if isinstance(c, Contact)), None)
    company = next((c for c in clients if isinstance(c, Company)), None)
    name = (form.fields.get("name") or "").strip()[:200] or email or phone or "web form"
    repeat = contact is not None
    if contact is None:
        contact = await Contact.create(
            name=name, emails=[{"value": email, "type": EmailType.work}] if email else [],
            phones=[{"value": phone, "type": phone_type(phone)}] if phone else [],
            company_id=company.id if company else None)
    values: dict[str, Any] = {"title": f"{name} (web form {form.form})"[:255], "source": f"web form {form.form}",
                              "contact": contact.id, "is_repeat": repeat}
    if company is not None or contact.company_id:
        values["company"] = company.id if company is not None else contact.company_id
    lead = await element_service.create_element(ElementType.lead, values, actor=SYSTEM)
    return contact, lead


# ---------------------------------------------------------------- sms_status: the SMS gateway's delivery receipts


@handler("sms_status")
async def sms_status(payload: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    """A delivery receipt: {id (the gateway's) or reference (ours, the message uid), status: delivered | failed |
    undelivered | rejected, error}. Receipts are idempotent by the message's state (a repeat changes nothing),
    so the key is not needed to answer a retry."""
    status, error = payload.get("status"), payload.get("error")
    ident, reference = payload.get("id"), payload.get("reference")
    word = status.strip().lower() if isinstance(status, str) else ""
    problems = []
    if word not in RECEIPT_STATUSES:
        problems.append(FieldError("status", f"must be one of {', '.join(RECEIPT_STATUSES)}, not {status!r:.60}"))
    if error is not None and not isinstance(error, str):
        problems.append(FieldError("error", "must be text"))
    for name, value in (("id", ident), ("reference", reference)):
        if value is not None and (not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value)):
            problems.append(FieldError(name, "must be a text or a number"))
    if ident in (None, "") and reference in (None, ""):
        problems.append(FieldError("id", "name the message: the gateway's id, or our reference"))
    if problems:
        raise ValidationFailed(problems)
    message = await _receipt_message(None if reference in (None, "") else str(reference),
                                     None if ident in (None, "") else str(ident))
    message, outcome = await record_receipt(message, word, error=(error or "").strip())
    return {"message": message.uid, "status": message.status, "receipt": outcome}


async def _receipt_message(reference: str | None, ident: str | None) -> Message:
    """Our reference first: it is known before the gateway answers, so a receipt that overtakes the answer
    finds its message (the gateway's id is stored only with `sent`)."""
    outbound = Message.filter(channel=Channel.sms, direction=Direction.outbound)
    if reference is not None and (found := await outbound.filter(uid=reference).first()) is not None:
        return found
    if ident is not None and (found := await outbound.filter(provider_id=ident).order_by("-id").first()) is not None:
        return found
    if ident is not None:
        raise ValidationFailed.one("id", f"no SMS we sent has the gateway id '{ident[:100]}'")
    raise ValidationFailed.one("reference", f"no SMS we sent has the reference '{str(reference)[:100]}'")



# ---------------------------------------------------------------- payments: a payment provider's notices


class PaymentPayload(Payload):
    element_type: Literal["lead", "deal"]
    element_id: int = Field(ge=1, strict=True)
    amount: Decimal  # "1250.00" or 1250; services/payments checks its range
    currency: str = Field(default="", max_length=3)
    reference: str = Field(default="", max_length=200)


@handler("payments")
async def payments_received(payload: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    """A payment for a lead or deal: recorded once per Idempotency-Key (a retry answers the first payment), on the
    element's timeline, and the event "payment received" triggers listen to."""
    notice = parse(PaymentPayload, payload)
    try:
        payment, new = await payments.record_payment(
            notice.element_type, notice.element_id, amount=notice.amount, currency=notice.currency,
            reference=notice.reference, idempotency_key=idempotency_key, actor=SYSTEM)
    except NotFound:
        raise ValidationFailed.one("element_id", f"{notice.element_type} {notice.element_id} does not exist") from None
    return {"payment_id": payment.id, "element": {"type": payment.element_type, "id": payment.element_id},
            "amount": str(payment.amount), "currency": payment.currency, "duplicate": not new}
