"""The outbox: an outbound message is a row written in the transaction of the change that sends it.

A rule run's message is keyed by the run (`Message.rule_run_id` is unique), so a run delivered twice finds
the message its first attempt wrote instead of making another. After commit the message is handed to
the dispatcher the worker layer installed in `dispatch.MESSAGES` (the scheduler's next poll finds it otherwise).
"""

import secrets
from typing import Any

from server import clock, events
from server.kinds import Direction, MessageStatus, Role
from server.models import Message, Suppression
from server.rules import dispatch, notifications

def new_uid() -> str:
    return secrets.token_hex(16)


def normalised(address: str) -> str:
    """How addresses are compared on the suppression and exception lists: emails lower-cased, numbers as given
    (they are E.164 already)."""
    return address.strip().lower()


async def suppressed(address: str) -> Suppression | None:
    return await Suppression.get_or_none(address=normalised(address))


async def queue(
    *, channel: str, recipient: str, text: str, sender: str, sender_name: str = "", subject: str = "",
    html: str = "", element_type: str | None = None, element_id: int | None = None, rule_run_id: int | None = None,
    author_id: int | None = None, meta: dict[str, Any] | None = None,
) -> Message:
    """Write an outbound message (inside the caller's transaction) and have it delivered after commit.

    A suppressed address gets a `suppressed` message with the reason instead, so the element shows what was
    not sent and why."""
    if rule_run_id is not None:
        existing = await Message.get_or_none(rule_run_id=rule_run_id)
        if existing is not None:
            return existing
    now = clock.utcnow()
    entry = await suppressed(recipient)
    message = await Message.create(
        uid=new_uid(), direction=Direction.outbound, channel=channel, recipient=recipient, sender=sender,
        sender_name=sender_name, subject=subject, text=text, html=html, element_type=element_type,
        element_id=element_id, rule_run_id=rule_run_id, author_id=author_id, meta=meta or {},
        status=MessageStatus.suppressed if entry else MessageStatus.queued, due_at=None if entry else now,
        reason=suppression_reason(entry) if entry else None,
    )
    await message_event(message)
    if entry is None:
        dispatch.MESSAGES.now([message.id])
    return message


def suppression_reason(entry: Suppression) -> str:
    why = {"hard_bounce": "it hard-bounced", "complaint": "its owner complained", "manual": "an admin put it there"}
    return f"not sent: {entry.address} is on the suppression list ({why.get(entry.reason, entry.reason)})"


async def message_event(message: Message, **extra: Any) -> None:
    """A message was written or changed status: for `activityStream` and `elementChanged` subscribers. A message
    of no lead or deal names a customer's address: its audience is the managers and admins (who see every
    element), decided when it is written like every event's."""
    audience = None if message.element_type else await notifications.audience(roles=(Role.admin, Role.manager))
    await events.emit("message", {
        "id": message.id, "direction": message.direction, "channel": message.channel, "status": message.status,
        "recipient": message.recipient, "sender": message.sender, "subject": message.subject,
        "attempts": message.attempts, "reason": message.reason, **extra,
    }, element_type=message.element_type, element_id=message.element_id, audience=audience)
