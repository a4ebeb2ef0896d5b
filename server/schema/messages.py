"""Customer channels in GraphQL: messages (an element's log, one message with its delivery attempts, resend), the
capture mailbox, the exception and suppression lists, mail senders, and the channel settings admins configure
providers with (webhook URLs and signing secrets, rotated here). services/messages.py decides who may do what."""

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from server import models
from server.schema.context import actor_of, context_of
from server.schema.errors import ForbiddenError, NotFoundError, ValidationError, result_of
from server.schema.ids import gid, to_int
from server.schema.kinds import Channel, Direction, ElementType, MessageStatus
from server.schema.relay import Connection, connection, decode
from server.services import hooks
from server.services import messages as message_service
from server.services.paging import page_size

ATTEMPTS_SHOWN = 20  # a message's latest delivery attempts a page of messages shows; `message(id)` has them all


@strawberry.type
class ElementRef:
    """The lead or deal a message belongs to (it may have been deleted since)."""

    type: ElementType
    id: strawberry.ID


@strawberry.type(name="DeliveryAttempt")
class DeliveryAttemptType:
    """One try at handing an outbound message to its peer (SMTP server, SMS gateway, capture mailbox)."""

    number: int
    transport: str
    outcome: str = strawberry.field(description="sent | retry | failed | lost; empty while it runs")
    answer: str = strawberry.field(description="The peer's answer (SMTP reply, gateway response) or the error.")
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, row: models.DeliveryAttempt) -> "DeliveryAttemptType":
        return cls(number=row.number, transport=row.transport, outcome=row.outcome, answer=row.answer,
                   started_at=row.started_at, finished_at=row.finished_at)


@strawberry.type
class Message:
    """An email or SMS we sent (an outbox row, then delivery attempts), or a message, call or form that came in."""

    id: strawberry.ID
    direction: Direction
    channel: Channel
    status: MessageStatus
    sender: str
    sender_name: str
    recipient: str
    subject: str
    text: str
    html: str = strawberry.field(description="The HTML body as sent: render it sandboxed, never inline.")
    transport: str = strawberry.field(description="Who delivered it: smtp, http (SMS gateway) or capture.")
    attempts: int
    answer: str | None = strawberry.field(description="The peer's last answer.")
    reason: str | None = strawberry.field(description="Why it failed, bounced, was suppressed or was sent again.")
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None
    element: ElementRef | None

    @strawberry.field(description="The latest `last` (up to 100) delivery attempts, oldest first.")
    async def delivery_attempts(self, info: Info, last: int = ATTEMPTS_SHOWN) -> list[DeliveryAttemptType]:
        attempts = await context_of(info).loaders.delivery_attempts.load(int(self.id))
        return [DeliveryAttemptType.of(a) for a in attempts[-page_size(last, "last"):]]

    @classmethod
    def of(cls, row: models.Message) -> "Message":
        element = (ElementRef(type=ElementType(row.element_type), id=gid(row.element_id))
                   if row.element_type and row.element_id else None)
        return cls(id=gid(row.id), direction=Direction(row.direction), channel=Channel(row.channel),
                   status=MessageStatus(row.status), sender=row.sender, sender_name=row.sender_name,
                   recipient=row.recipient, subject=row.subject, text=row.text, html=row.html,
                   transport=row.transport, attempts=row.attempts, answer=row.answer, reason=row.reason,
                   created_at=row.created_at, sent_at=row.sent_at, delivered_at=row.delivered_at,
                   opened_at=row.opened_at, clicked_at=row.clicked_at, element=element)


@strawberry.type
class MessageEvent:
    """A message written or changed status, as `activityStream` and `elementChanged` carry it."""

    id: strawberry.ID
    direction: Direction
    channel: Channel
    status: MessageStatus
    sender: str
    recipient: str
    subject: str
    attempts: int
    reason: str | None

    @classmethod
    def of(cls, payload: dict[str, Any]) -> "MessageEvent":
        return cls(id=gid(payload["id"]), direction=Direction(payload["direction"]),
                   channel=Channel(payload["channel"]), status=MessageStatus(payload["status"]),
                   sender=payload.get("sender", ""), recipient=payload.get("recipient", ""),
                   subject=payload.get("subject", ""), attempts=payload.get("attempts", 0),
                   reason=payload.get("reason"))


@strawberry.type(name="ExceptionEntry")
class ExceptionEntryType:
    """An address whose mail and calls the CRM does not store: they are only counted."""

    id: strawberry.ID
    kind: str = strawberry.field(description="email | phone")
    value: str = strawberry.field(description="The lower-cased address, or the number in E.164.")
    note: str
    blocked_count: int
    last_blocked_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: models.ExceptionEntry) -> "ExceptionEntryType":
        return cls(id=gid(row.id), kind=row.kind, value=row.value, note=row.note, blocked_count=row.blocked_count,
                   last_blocked_at=row.last_blocked_at, created_at=row.created_at)


@strawberry.type(name="Suppression")
class SuppressionType:
    """An address later sends skip, with the reason."""

    id: strawberry.ID
    address: str
    reason: str = strawberry.field(description="hard_bounce | complaint | manual")
    detail: str
    message_id: strawberry.ID | None
    created_at: datetime

    @classmethod
    def of(cls, row: models.Suppression) -> "SuppressionType":
        return cls(id=gid(row.id), address=row.address, reason=row.reason, detail=row.detail,
                   message_id=None if row.message_id is None else gid(row.message_id), created_at=row.created_at)


@strawberry.type(name="MailSender")
class MailSenderType:
    """An address Send email rules may send from; exactly one is the default."""

    id: strawberry.ID
    name: str
    address: str
    reply_to: str
    is_default: bool

    @classmethod
    def of(cls, row: models.MailSender) -> "MailSenderType":
        return cls(id=gid(row.id), name=row.name, address=row.address, reply_to=row.reply_to,
                   is_default=row.is_default)


@strawberry.type
class Webhook:
    """Where a provider posts one channel's events, and the key it signs them with
    (X-Pipewright-Signature: sha256=<hex HMAC-SHA256 of the body>)."""

    channel: str
    description: str
    url: str
    signing_secret: str

    @classmethod
    def of(cls, info: hooks.HookInfo) -> "Webhook":
        return cls(channel=info.channel, description=info.description, url=info.url,
                   signing_secret=info.signing_secret)


@strawberry.type
class ChannelSettings:
    """How the channels are configured (from the server's environment). Servers are shown as scheme://host:port,
    never with credentials."""

    smtp_server: str | None = strawberry.field(description="None: email goes to the capture mailbox.")
    mail_from: str
    dkim_selector: str | None = strawberry.field(description="None: mail is not DKIM-signed.")
    dkim_domain: str | None
    sms_gateway: str | None = strawberry.field(description="None: SMS goes to the capture mailbox.")
    sms_auth_configured: bool
    sms_from: str
    mail_receiver: str | None = strawberry.field(description="host:port of the inbound SMTP receiver; None: off.")
    webhooks: list[Webhook]

    @classmethod
    def of(cls, shown: message_service.ChannelSettings) -> "ChannelSettings":
        return cls(smtp_server=None if shown.smtp is None else str(shown.smtp), mail_from=shown.mail_from,
                   dkim_selector=shown.dkim_selector, dkim_domain=shown.dkim_domain,
                   sms_gateway=None if shown.sms_gateway is None else str(shown.sms_gateway),
                   sms_auth_configured=shown.sms_auth_configured, sms_from=shown.sms_from,
                   mail_receiver=shown.mail_receiver, webhooks=[Webhook.of(h) for h in shown.webhooks])


@strawberry.input
class MailSenderInput:
    """Fields left out keep their value on update. Making a sender the default unsets the others."""

    name: str | None = None
    address: str | None = None
    reply_to: str | None = None
    is_default: bool | None = None

    def to_service(self) -> message_service.SenderInput:
        return message_service.SenderInput(name=self.name, address=self.address, reply_to=self.reply_to,
                                           is_default=self.is_default)


MessageLookup = Annotated[Message | ValidationError | NotFoundError | ForbiddenError, strawberry.union("MessageLookup")]
MessageResult = Annotated[Message | ValidationError | NotFoundError | ForbiddenError, strawberry.union("MessageResult")]
ExceptionResult = Annotated[
    ExceptionEntryType | ValidationError | NotFoundError | ForbiddenError, strawberry.union("ExceptionResult")
]
SuppressionResult = Annotated[
    SuppressionType | ValidationError | NotFoundError | ForbiddenError, strawberry.union("SuppressionResult")
]
MailSenderResult = Annotated[
    MailSenderType | ValidationError | NotFoundError | ForbiddenError, strawberry.union("MailSenderResult")
]
WebhookResult = Annotated[Webhook | ValidationError | NotFoundError | ForbiddenError, strawberry.union("WebhookResult")]
ChannelSettingsLookup = Annotated[ChannelSettings | ForbiddenError, strawberry.union("ChannelSettingsLookup")]


async def element_messages(info: Info, element_type: str, element_id: int, *, first: int,
                           after: str | None) -> Connection[Message]:
    """An element's messages, newest first (what `Deal.messages`, `Lead.messages` and `messages(…)` answer)."""
    page = await message_service.element_messages(element_type, element_id, actor=actor_of(info), first=first,
                                                  after=decode(after))
    return connection(page, Message.of, after=after)


@strawberry.type
class MessageQuery:
    @strawberry.field(description="The messages of a lead or deal, newest first; whoever may see the element.")
    async def messages(self, info: Info, element_type: str, element_id: strawberry.ID, first: int = 20,
                       after: str | None = None) -> Connection[Message]:
        return await element_messages(info, element_type, to_int(element_id, "element_id"), first=first, after=after)

    @strawberry.field(description="One message with its delivery attempts.")
    async def message(self, info: Info, id: strawberry.ID) -> MessageLookup:
        actor = actor_of(info)

        async def read() -> Message:
            detail = await message_service.get_message(to_int(id, "id"), actor=actor)
            context_of(info).loaders.delivery_attempts.prime(detail.message.id, detail.attempts)
            return Message.of(detail.message)

        return await result_of(read)

    @strawberry.field(description="What the built-in capture mailbox holds (sent while no SMTP server or SMS "
                                  "gateway is configured), newest first. Managers and admins.")
    async def capture_mailbox(self, info: Info, first: int = 20, after: str | None = None) -> Connection[Message]:
        page = await message_service.capture_mailbox(actor=actor_of(info), first=first, after=decode(after))
        return connection(page, Message.of, after=after)

    @strawberry.field(description="Addresses whose mail and calls are not stored, newest first. Managers and admins.")
    async def exceptions(self, info: Info, first: int = 50, after: str | None = None,
                         search: str | None = None) -> Connection[ExceptionEntryType]:
        page = await message_service.exceptions(actor=actor_of(info), first=first, after=decode(after), search=search)
        return connection(page, ExceptionEntryType.of, after=after)

    @strawberry.field(description="Addresses later sends skip, newest first. Managers and admins.")
    async def suppressions(self, info: Info, first: int = 50, after: str | None = None,
                           search: str | None = None) -> Connection[SuppressionType]:
        page = await message_service.suppressions(actor=actor_of(info), first=first, after=decode(after),
                                                  search=search)
        return connection(page, SuppressionType.of, after=after)

    @strawberry.field(description="The configured mail senders, the default first (a Send email rule's `sender`).")
    async def mail_senders(self, info: Info) -> list[MailSenderType]:
        return [MailSenderType.of(s) for s in await message_service.mail_senders(actor=actor_of(info))]

    @strawberry.field(description="Admins only: transports, DKIM, the inbound receiver, webhook URLs and secrets.")
    async def channel_settings(self, info: Info) -> ChannelSettingsLookup:
        actor = actor_of(info)
        result = await result_of(lambda: message_service.channel_settings(actor=actor), ChannelSettings.of)
        assert not isinstance(result, (ValidationError, NotFoundError))  # reading settings refuses only by role
        return result


@strawberry.type
class MessageMutation:
    @strawberry.mutation(description="Send a failed message again (a suppressed one once its address is off the "
                                     "suppression list): queued now, through the normal delivery.")
    async def resend_message(self, info: Info, id: strawberry.ID) -> MessageResult:
        actor = actor_of(info)
        return await result_of(lambda: message_service.resend(to_int(id, "id"), actor=actor), Message.of)

    @strawberry.mutation(description="Admins only. An email address or a phone number in international format.")
    async def add_exception(self, info: Info, value: str, note: str = "") -> ExceptionResult:
        actor = actor_of(info)
        return await result_of(lambda: message_service.add_exception(value, note=note, actor=actor),
                               ExceptionEntryType.of)

    @strawberry.mutation(description="Admins only. Answers the entry removed.")
    async def remove_exception(self, info: Info, id: strawberry.ID) -> ExceptionResult:
        actor = actor_of(info)
        return await result_of(lambda: message_service.remove_exception(to_int(id, "id"), actor=actor),
                               ExceptionEntryType.of)

    @strawberry.mutation(description="Admins only. Later sends to the address are skipped (reason `manual`).")
    async def add_suppression(self, info: Info, value: str, detail: str = "") -> SuppressionResult:
        actor = actor_of(info)
        return await result_of(lambda: message_service.add_suppression(value, detail=detail, actor=actor),
                               SuppressionType.of)

    @strawberry.mutation(description="Admins only. Sends to the address go out again. Answers the entry removed.")
    async def remove_suppression(self, info: Info, id: strawberry.ID) -> SuppressionResult:
        actor = actor_of(info)
        return await result_of(lambda: message_service.remove_suppression(to_int(id, "id"), actor=actor),
                               SuppressionType.of)

    @strawberry.mutation(description="Admins only. The first sender becomes the default.")
    async def create_mail_sender(self, info: Info, input: MailSenderInput) -> MailSenderResult:
        actor = actor_of(info)
        return await result_of(lambda: message_service.create_sender(input.to_service(), actor=actor),
                               MailSenderType.of)

    @strawberry.mutation(description="Admins only.")
    async def update_mail_sender(self, info: Info, id: strawberry.ID, input: MailSenderInput) -> MailSenderResult:
        actor = actor_of(info)
        return await result_of(lambda: message_service.update_sender(to_int(id, "id"), input.to_service(),
                                                                     actor=actor), MailSenderType.of)

    @strawberry.mutation(description="Admins only. Rules naming it send from the default; answers the sender removed.")
    async def delete_mail_sender(self, info: Info, id: strawberry.ID) -> MailSenderResult:
        actor = actor_of(info)
        return await result_of(lambda: message_service.delete_sender(to_int(id, "id"), actor=actor),
                               MailSenderType.of)

    @strawberry.mutation(description="Admins only. A new URL and signing secret for a webhook channel (calls, sms, "
                                     "chat, forms, sms_status): the old ones stop working at once.")
    async def rotate_webhook_secret(self, info: Info, channel: str) -> WebhookResult:
        actor = actor_of(info)
        return await result_of(lambda: message_service.rotate_webhook(channel, actor=actor), Webhook.of)
