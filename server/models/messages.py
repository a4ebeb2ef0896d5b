"""Customer channels: messages (the outbox and what came in), their delivery attempts, the exception
and suppression lists, configured senders, and the secrets of the inbound webhooks."""

from typing import Any

from tortoise import fields
from tortoise.models import Model

from server.kinds import MessageStatus


class Message(Model):
    """One email, SMS, call, chat message or form submission, outbound or inbound.

    An outbound message is written in the transaction of the rule run that sends it (one per run: `rule_run_id`
    is unique) and delivered by its own durable attempts: `due_at` is when the next one may start, `lease_until`
    how long the attempt holding it (status `sending`) may go on before another takes over. `uid` is stable for
    the row: the email's Message-ID, the gateway's idempotency key and the tracking token derive from it.
    """

    id = fields.IntField(primary_key=True)
    uid = fields.CharField(max_length=32, unique=True)
    direction = fields.CharField(max_length=10)
    channel = fields.CharField(max_length=10)
    status = fields.CharField(max_length=12, default=MessageStatus.queued.value)
    element_type = fields.CharField(max_length=10, null=True)
    element_id = fields.IntField(null=True)
    rule_run_id = fields.IntField(null=True, unique=True)
    sender = fields.CharField(max_length=320, default="")  # an address or E.164 number
    sender_name = fields.CharField(max_length=200, default="")
    recipient = fields.CharField(max_length=320, default="")
    subject = fields.CharField(max_length=998, default="")
    text = fields.TextField(default="")
    html = fields.TextField(default="")
    transport = fields.CharField(max_length=16, default="")  # smtp | capture | http: who delivered it
    attempts = fields.IntField(default=0)
    due_at = fields.DatetimeField(null=True)
    lease_until = fields.DatetimeField(null=True)
    answer = fields.TextField(null=True)  # the peer's last answer (SMTP reply, gateway response)
    provider_id = fields.CharField(max_length=255, null=True)  # the gateway's id for delivery receipts
    reason = fields.TextField(null=True)  # why it failed, bounced or was suppressed
    in_reply_to_id = fields.IntField(null=True)  # an inbound reply: our outbound message it answers
    header_message_id = fields.CharField(max_length=998, default="")  # inbound: the sender's Message-ID
    idempotency_key = fields.CharField(max_length=200, null=True)  # inbound webhooks: a retry is the same delivery
    meta: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)  # call details, form fields, links
    author_id = fields.IntField(null=True)  # the run-as user of the rule that sent it
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    opened_at = fields.DatetimeField(null=True)
    clicked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "message"
        indexes = (("status", "due_at"), ("status", "lease_until"), ("element_type", "element_id"), ("provider_id",))
        unique_together = (("channel", "idempotency_key"),)


class DeliveryAttempt(Model):
    """One try at handing an outbound message to its peer, with the peer's answer."""

    id = fields.IntField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="delivery_attempts", on_delete=fields.CASCADE
    )
    message_id: int
    number = fields.IntField()
    transport = fields.CharField(max_length=16)
    outcome = fields.CharField(max_length=12, default="")  # sent | retry | failed | lost
    answer = fields.TextField(default="")
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "delivery_attempt"
        unique_together = (("message", "number"),)


class ExceptionEntry(Model):
    """An email address or phone number whose mail and calls the CRM does not store (only counts)."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=10)  # email | phone
    value = fields.CharField(max_length=320, unique=True)  # lower-cased address, or E.164
    note = fields.CharField(max_length=255, default="")
    created_by_id = fields.IntField(null=True)
    rule_run_id = fields.IntField(null=True)
    blocked_count = fields.IntField(default=0)
    last_blocked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "exception_entry"


class Suppression(Model):
    """An address later sends skip: it hard-bounced, complained, or an admin put it here."""

    id = fields.IntField(primary_key=True)
    address = fields.CharField(max_length=320, unique=True)  # lower-cased address, or E.164
    reason = fields.CharField(max_length=20)  # hard_bounce | complaint | manual
    detail = fields.TextField(default="")
    message_id = fields.IntField(null=True)  # the message whose bounce put it here
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "suppression"


class MailSender(Model):
    """An address Send email rules may send from (the default one when a rule names none)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    address = fields.CharField(max_length=320, unique=True)
    reply_to = fields.CharField(max_length=320, default="")
    is_default = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "mail_sender"


class ChannelHook(Model):
    """The secrets of one inbound webhook channel (calls, sms, chat, forms, sms_status): `token` is the
    secret part of its URL, `signing_secret` the HMAC key its bodies are signed with."""

    id = fields.IntField(primary_key=True)
    channel = fields.CharField(max_length=20, unique=True)
    token = fields.CharField(max_length=64, unique=True)
    signing_secret = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "channel_hook"
