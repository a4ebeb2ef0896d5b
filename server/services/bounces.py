"""Recording delivery reports about our messages: a hard bounce marks the message bounced and suppresses its
address, a delay only notes the reason, a complaint suppresses. Later sends to a suppressed address are
skipped by the outbox with the reason.

A report is not customer activity: it ends no Wait rule.
"""

from dataclasses import dataclass

from server.channels.bounces import Report, RecipientStatus
from server.channels.outbox import message_event, normalised
from server.db import transaction
from server.kinds import Direction, MessageStatus
from server.models import Message, Suppression
from server.rules import elements

# A bounce may arrive while a retry is still pending: it ends the message whatever its delivery status was.
_NOT_BOUNCEABLE = (MessageStatus.bounced, MessageStatus.suppressed, MessageStatus.received)


@dataclass
class ReportRecorded:
    message: Message | None  # our message the report is about; None when it names none of ours
    outcome: str  # bounced | delayed | complaint | nothing (a success notice, or a repeat)
    suppressed: str | None = None  # the address put on the suppression list


async def record_report(report: Report) -> ReportRecorded:
    """Apply a DSN or ARF report to the message it is about, in one transaction."""
    async with transaction():
        message = await _our_message(report.uids)
        if message is None:
            return ReportRecorded(None, "nothing")
        if report.kind == "complaint":
            return await _complaint(message, report)
        hard = [r for r in report.recipients if r.permanent]
        if hard:
            return await _bounce(message, _for_recipient(hard, message))
        delayed = [r for r in report.recipients if r.transient]
        if delayed:
            status = _for_recipient(delayed, message)
            message.reason = f"delayed ({status.status}): {status.diagnostic}"
            await Message.filter(id=message.id).update(reason=message.reason)
            await message_event(message)
            return ReportRecorded(message, "delayed")
    return ReportRecorded(message, "nothing")


async def _our_message(uids: list[str]) -> Message | None:
    if not uids:
        return None
    return await Message.filter(uid__in=uids[:20], direction=Direction.outbound).order_by("-id").first()


def _for_recipient(statuses: list[RecipientStatus], message: Message) -> RecipientStatus:
    """The block about the address the message went to (a report may list others, or the forwarded one)."""
    ours = [s for s in statuses if s.address == normalised(message.recipient)]
    return (ours or statuses)[0]


async def _bounce(message: Message, status: RecipientStatus) -> ReportRecorded:
    reason = f"bounced ({status.status}): {status.diagnostic}"
    taken = await Message.filter(id=message.id).exclude(status__in=list(_NOT_BOUNCEABLE)).update(
        status=MessageStatus.bounced, reason=reason, due_at=None, lease_until=None)
    address = await _suppress(message, "hard_bounce", status.diagnostic)
    if not taken:  # a second report of the same bounce: nothing new to say
        return ReportRecorded(message, "nothing", suppressed=address)
    message.status, message.reason = MessageStatus.bounced, reason
    await message_event(message)
    await _on_timeline(message, f"bounced: {status.diagnostic}")
    return ReportRecorded(message, "bounced", suppressed=address)


async def _complaint(message: Message, report: Report) -> ReportRecorded:
    kind = report.feedback_type or "abuse"
    existing = await Suppression.get_or_none(address=normalised(message.recipient))
    address = await _suppress(message, "complaint", f"feedback report: {kind}")
    if existing is None:
        await _on_timeline(message, f"was reported as {'spam' if kind == 'abuse' else kind} by its recipient; "
                                    "the address gets no more mail")
    return ReportRecorded(message, "complaint", suppressed=address)


async def _suppress(message: Message, reason: str, detail: str) -> str:
    """Put the message's recipient on the suppression list (the first reason stays)."""
    address = normalised(message.recipient)
    # ON CONFLICT DO NOTHING: a concurrent report of the same address may get there first, and a failed
    # INSERT would abort the whole transaction on PostgreSQL.
    await Suppression.bulk_create([Suppression(address=address, reason=reason, detail=detail[:2000],
                                               message_id=message.id)], ignore_conflicts=True)
    return address


async def _on_timeline(message: Message, what: str) -> None:
    if message.element_type and message.element_id:
        await elements.add_timeline_entry(
            message.element_type, message.element_id, "history",
            f"Email “{message.subject}” to {message.recipient} {what}", author_id=None)
