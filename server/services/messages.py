"""Messages as the faces show them: an element's message log, one message with its delivery attempts, resending
a failed one, the capture mailbox, the exception and suppression lists, the mail senders, and channel settings.

Who may do what (services/access.py is the matrix; this is its reading for messages):
- An element's messages, one message and its attempts, and resending it: whoever may see the element (kept after
  the element is deleted; then managers and admins). A message without an element: managers and admins.
- The capture mailbox, the exception list and the suppression list: read by managers and admins (they name
  customers' addresses across every element); changed by admins only.
- Mail senders: read by everyone (the rule form and clients offer them), changed by admins only.
- Channel settings (transports, DKIM, the inbound receiver, webhook URLs and signing secrets): admins only.
  Passwords are never shown: a server is its scheme and host:port.
"""

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError

from server import clock
from server.channels.addresses import international
from server.channels.outbox import message_event, normalised, suppressed
from server.rules import dispatch
from server.config import settings
from server.db import transaction
from server.errors import FieldError, Forbidden, NotFound, ValidationFailed
from server.kinds import AddressKind, Direction, MessageStatus
from server.models import DeliveryAttempt, ExceptionEntry, MailSender, Message, Suppression, User
from server.services import hooks
from server.services.access import Acting, Actor, require_admin
from server.services.elements import require_visible
from server.services.paging import MAX_PAGE, Slice, keyset

__all__ = [
    "Capturing", "ChannelSettings", "MessageDetail", "SenderInput", "add_exception", "add_suppression",
    "capture_mailbox", "capturing",
    "channel_settings", "create_sender", "delete_sender", "element_messages", "exceptions", "get_message",
    "mail_senders", "remove_exception", "remove_suppression", "resend", "rotate_webhook", "suppressions",
    "update_sender",
]

ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
ADDRESS_CHARS = 320
NOTE_CHARS = 255
NAME_CHARS = 200
MAX_RESENDS_KEPT = 20  # the message's meta keeps the latest resends, so a row cannot grow without bound


def _require_staff(actor: Acting, what: str) -> None:
    """Managers and admins: those who see every element, and so every customer address."""
    if isinstance(actor, Actor) and not actor.sees_all_elements:
        raise Forbidden(f"only managers and admins may see {what}")


async def _require_message(actor: Acting, message: Message) -> None:
    if message.element_type and message.element_id:
        await require_visible(actor, message.element_type, message.element_id)
    else:
        _require_staff(actor, "messages that belong to no lead or deal")


# ---------------------------------------------------------------- messages


async def element_messages(element_type: str, element_id: int, *, actor: Acting, first: int = 50,
                           after: int | None = None) -> Slice:
    """The messages of a lead or deal, both directions, newest first, in keyset pages."""
    await require_visible(actor, element_type, element_id)
    return await keyset(Message.filter(element_type=element_type, element_id=element_id), first=first, after=after)


@dataclass(frozen=True)
class MessageDetail:
    message: Message
    attempts: list[DeliveryAttempt]  # oldest first


async def get_message(message_id: int, *, actor: Acting) -> MessageDetail:
    message = await Message.get_or_none(id=message_id)
    if message is None:
        raise NotFound("message", message_id)
    await _require_message(actor, message)
    return MessageDetail(message, await attempts_of([message.id], limit=MAX_PAGE))


async def attempts_of(message_ids: list[int], *, limit: int = MAX_PAGE) -> list[DeliveryAttempt]:
    """The delivery attempts of messages the caller has already been allowed to see, oldest first."""
    return await DeliveryAttempt.filter(message_id__in=message_ids).order_by("message_id", "number").limit(
        limit * max(1, len(message_ids)))


async def resend(message_id: int, *, actor: Acting) -> Message:
    """Send a failed message again: it goes back to `queued`, due now, through the normal delivery (its attempts
    count on). A suppressed message may be resent once its address is off the suppression list. The resend is
    recorded in the message's reason and `meta["resends"]` with who did it."""
    message = await Message.get_or_none(id=message_id)
    if message is None:
        raise NotFound("message", message_id)
    await _require_message(actor, message)
    if message.direction != Direction.outbound:
        raise ValidationFailed.one("id", "only messages we sent can be sent again; this one came in")
    if message.status == MessageStatus.suppressed:
        if await suppressed(message.recipient) is not None:
            raise ValidationFailed.one(
                "id", f"{message.recipient} is still on the suppression list: remove it there first")
    elif message.status != MessageStatus.failed:
        raise ValidationFailed.one("id", f"only failed messages can be sent again; this one is {message.status}")
    who = await _name_of(actor)
    now = clock.utcnow()
    resends = [*list((message.meta or {}).get("resends") or []), {
        "by": actor.user_id, "by_name": who, "at": now.isoformat(), "status": message.status,
        "reason": message.reason, "attempts": message.attempts,
    }][-MAX_RESENDS_KEPT:]
    meta = {**(message.meta or {}), "resends": resends}
    reason = f"sent again by {who} at {now:%Y-%m-%d %H:%M} UTC (was {message.status}: {message.reason or 'no reason'})"
    async with transaction():
        # Compare-and-set on the status and attempts read: two resends at once queue it once.
        taken = await Message.filter(id=message.id, status=message.status, attempts=message.attempts).update(
            status=MessageStatus.queued, due_at=now, reason=reason[:2000], meta=meta, lease_until=None)
        if not taken:
            raise ValidationFailed.one("id", "the message changed meanwhile: reload it and try again")
        message.status, message.due_at, message.reason, message.meta = MessageStatus.queued, now, reason, meta
        await message_event(message, resent_by=actor.user_id)
        dispatch.MESSAGES.now([message.id])
    return message


async def _name_of(actor: Acting) -> str:
    if actor.user_id is None:
        return "the system"
    user = await User.get_or_none(id=actor.user_id).only("id", "name")
    return user.name if user else f"user {actor.user_id}"


@dataclass(frozen=True)
class Capturing:
    """Which channels go to the capture mailbox now (nothing configured for them)."""

    email: bool
    sms: bool


def capturing(*, actor: Acting) -> Capturing:
    _require_staff(actor, "the capture mailbox")
    config = settings()
    return Capturing(email=not config.smtp_url, sms=not config.sms_url)


async def capture_mailbox(*, actor: Acting, first: int = 50, after: int | None = None) -> Slice:
    """What the built-in capture mailbox holds (mail and SMS sent while no SMTP server or gateway is configured),
    newest first."""
    _require_staff(actor, "the capture mailbox")
    return await keyset(Message.filter(direction=Direction.outbound, transport="capture"), first=first, after=after)


# ---------------------------------------------------------------- addresses: exceptions and suppressions


def address_of(value: str, *, field: str = "value") -> tuple[AddressKind, str]:
    """An email address (lower-cased) or a phone number in international format (as E.164), or a clear error."""
    text = value.strip()
    if not text:
        raise ValidationFailed.one(field, "give an email address or a phone number")
    if len(text) > ADDRESS_CHARS:
        raise ValidationFailed.one(field, f"must be at most {ADDRESS_CHARS} characters")
    if "@" in text:
        if not ADDRESS.match(text):
            raise ValidationFailed.one(field, f"'{text}' is not an email address")
        return AddressKind.email, normalised(text)
    if not text.startswith("+"):
        raise ValidationFailed.one(field, f"'{text}' is neither an email address nor a phone number in "
                                          "international format (e.g. +49 30 1234567)")
    number = international(text)
    if number is None:
        raise ValidationFailed.one(field, f"'{text}' is not a phone number (international format, e.g. +49 30 1234567)")
    return AddressKind.phone, number


async def exceptions(*, actor: Acting, first: int = 50, after: int | None = None, search: str | None = None) -> Slice:
    """Addresses whose mail and calls are not stored (only counted), newest first."""
    _require_staff(actor, "the exception list")
    query = ExceptionEntry.all()
    if search:
        query = query.filter(value__icontains=search.strip().lower())
    return await keyset(query, first=first, after=after)


async def add_exception(value: str, *, note: str = "", actor: Acting) -> ExceptionEntry:
    require_admin(actor)
    kind, address = address_of(value)
    if len(note) > NOTE_CHARS:
        raise ValidationFailed.one("note", f"must be at most {NOTE_CHARS} characters")
    if await ExceptionEntry.exists(value=address):
        raise ValidationFailed.one("value", f"{address} is on the exception list already")
    try:
        return await ExceptionEntry.create(kind=kind, value=address, note=note.strip(), created_by_id=actor.user_id)
    except IntegrityError:  # added by someone else at the same moment
        raise ValidationFailed.one("value", f"{address} is on the exception list already") from None


async def remove_exception(entry_id: int, *, actor: Acting) -> ExceptionEntry:
    require_admin(actor)
    entry = await ExceptionEntry.get_or_none(id=entry_id)
    if entry is None:
        raise NotFound("exception", entry_id)
    await entry.delete()
    return entry


async def suppressions(*, actor: Acting, first: int = 50, after: int | None = None,
                       search: str | None = None) -> Slice:
    """Addresses later sends skip (hard bounces, complaints, added by hand), newest first."""
    _require_staff(actor, "the suppression list")
    query = Suppression.all()
    if search:
        query = query.filter(address__icontains=search.strip().lower())
    return await keyset(query, first=first, after=after)


async def add_suppression(value: str, *, detail: str = "", actor: Acting) -> Suppression:
    """An admin stops sends to an address (reason `manual`)."""
    require_admin(actor)
    _, address = address_of(value)
    if await Suppression.exists(address=address):
        raise ValidationFailed.one("value", f"{address} is on the suppression list already")
    try:
        return await Suppression.create(address=address, reason="manual", detail=detail.strip()[:2000])
    except IntegrityError:
        raise ValidationFailed.one("value", f"{address} is on the suppression list already") from None


async def remove_suppression(suppression_id: int, *, actor: Acting) -> Suppression:
    """Sends to the address go out again (a suppressed message of it may then be resent)."""
    require_admin(actor)
    entry = await Suppression.get_or_none(id=suppression_id)
    if entry is None:
        raise NotFound("suppression", suppression_id)
    await entry.delete()
    return entry


# ---------------------------------------------------------------- mail senders


@dataclass
class SenderInput:
    """Fields left None keep their value on update (or take the default on create)."""

    name: str | None = None
    address: str | None = None
    reply_to: str | None = None
    is_default: bool | None = None


async def mail_senders(*, actor: Acting) -> list[MailSender]:
    """Every configured sender, the default first. A short list an admin keeps (bounded all the same)."""
    del actor  # everyone may read them: the rule form and API clients offer them as choices
    return await MailSender.all().order_by("-is_default", "name", "id").limit(MAX_PAGE)


def _checked_sender(data: SenderInput, *, new: bool) -> dict[str, Any]:
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    if data.name is not None or new:
        name = (data.name or "").strip()
        if not name:
            errors.append(FieldError("name", "give the sender a name (shown as the From name)"))
        elif len(name) > NAME_CHARS:
            errors.append(FieldError("name", f"must be at most {NAME_CHARS} characters"))
        values["name"] = name
    for field, required in (("address", True), ("reply_to", False)):
        raw = getattr(data, field)
        if raw is None and not new:
            continue
        text = (raw or "").strip()
        if not text and required:
            errors.append(FieldError(field, "give an email address"))
        elif text and (len(text) > ADDRESS_CHARS or not ADDRESS.match(text)):
            errors.append(FieldError(field, f"'{text[:100]}' is not an email address"))
        values[field] = text.lower() if field == "address" else text
    if data.is_default is not None:
        values["is_default"] = data.is_default
    if errors:
        raise ValidationFailed(errors)
    return values


async def create_sender(data: SenderInput, *, actor: Acting) -> MailSender:
    require_admin(actor)
    values = _checked_sender(data, new=True)
    async with transaction():
        if await MailSender.exists(address=values["address"]):
            raise ValidationFailed.one("address", f"{values['address']} is a sender already")
        first = not await MailSender.exists()
        values["is_default"] = bool(values.get("is_default")) or first  # the first sender is the default
        if values["is_default"]:
            await MailSender.filter(is_default=True).update(is_default=False)
        return await MailSender.create(**values)


async def update_sender(sender_id: int, data: SenderInput, *, actor: Acting) -> MailSender:
    """Setting `is_default` unsets the others in the same transaction: there is exactly one default. Unsetting
    the default itself is refused (make another the default instead)."""
    require_admin(actor)
    values = _checked_sender(data, new=False)
    async with transaction():
        sender = await MailSender.get_or_none(id=sender_id)
        if sender is None:
            raise NotFound("mail sender", sender_id)
        if "address" in values and await MailSender.filter(address=values["address"]).exclude(id=sender_id).exists():
            raise ValidationFailed.one("address", f"{values['address']} is a sender already")
        if values.get("is_default") is False and sender.is_default:
            raise ValidationFailed.one("is_default", "make another sender the default instead")
        if values.get("is_default"):
            await MailSender.filter(is_default=True).exclude(id=sender_id).update(is_default=False)
        for key, value in values.items():
            setattr(sender, key, value)
        await sender.save()
    return sender


async def delete_sender(sender_id: int, *, actor: Acting) -> MailSender:
    """Rules that name it fall back to the default sender; the default passes to the oldest other sender."""
    require_admin(actor)
    async with transaction():
        sender = await MailSender.get_or_none(id=sender_id)
        if sender is None:
            raise NotFound("mail sender", sender_id)
        await sender.delete()
        if sender.is_default:
            successor = await MailSender.all().order_by("id").first()
            if successor is not None:
                await MailSender.filter(id=successor.id).update(is_default=True)
    return sender


# ---------------------------------------------------------------- channel settings


@dataclass(frozen=True)
class Endpoint:
    """A configured peer as an admin may see it: its scheme and host:port, never credentials or a path."""

    scheme: str
    host_port: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_port}"


@dataclass(frozen=True)
class ChannelSettings:
    smtp: Endpoint | None  # None: email goes to the capture mailbox
    mail_from: str
    dkim_selector: str | None  # None: mail is not DKIM-signed
    dkim_domain: str | None
    sms_gateway: Endpoint | None  # None: SMS goes to the capture mailbox
    sms_auth_configured: bool
    sms_from: str
    mail_receiver: str | None  # host:port of the inbound SMTP receiver, None when it is off
    webhooks: list[hooks.HookInfo]


def _endpoint(url: str, default_ports: dict[str, int]) -> Endpoint | None:
    if not url:
        return None
    parts = urlsplit(url)
    try:
        port = parts.port or default_ports.get(parts.scheme)
    except ValueError:  # a port that is no number: show the host alone
        port = None
    host = parts.hostname or "?"
    return Endpoint(parts.scheme, f"{host}:{port}" if port else host)


async def channel_settings(*, actor: Acting) -> ChannelSettings:
    require_admin(actor)
    config = settings()
    dkim = bool(config.dkim_key_file)
    return ChannelSettings(
        smtp=_endpoint(config.smtp_url, {"smtp": 25, "smtps": 465}), mail_from=config.mail_from,
        dkim_selector=config.dkim_selector if dkim else None,
        dkim_domain=(config.dkim_domain or config.mail_from.rpartition("@")[2]) if dkim else None,
        sms_gateway=_endpoint(config.sms_url, {"http": 80, "https": 443}), sms_auth_configured=bool(config.sms_auth),
        sms_from=config.sms_from, mail_receiver=config.mailin or None, webhooks=await hooks.hooks(actor=actor),
    )


async def rotate_webhook(channel: str, *, actor: Acting) -> hooks.HookInfo:
    """New URL and signing secret for a webhook channel: the old ones stop working at once."""
    return await hooks.rotate(channel, actor=actor)

