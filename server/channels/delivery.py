"""Delivering outbound messages: durable attempts with a lease, backoff, and the peer's answer recorded.

A message's life: `queued` (due_at: when the next attempt may start) → `sending` (one attempt holds the lease
and renews it while the peer works) → `sent` | `queued` again (a transient error, with backoff) | `failed`.
Every change is a compare-and-set on (status, attempts), so an attempt that lost its lease (worker frozen,
killed) cannot record an outcome over the one that took over.

What can still happen twice: an attempt killed after the peer accepted the message and before `sent` was
committed is repeated when its lease expires. The repeat carries the same Message-ID (email) or idempotency
key (SMS gateway), so a peer that deduplicates on them delivers once; one that does not delivers twice. That
window is one SMTP reply long.
"""

import asyncio
import logging
from datetime import timedelta

from server import clock, lease
from server.channels.outbox import message_event, suppressed, suppression_reason
from server.channels import capture, sms, smtp
from server.channels.transports import PermanentSendError, Sent, TransientSendError, Transport
from server.config import settings
from server.db import transaction
from server.kinds import Channel, MessageStatus
from server.models import DeliveryAttempt, Message

log = logging.getLogger(__name__)

# How long a claimed message may wait for a worker before the scheduler sends it again.
QUEUED_LEASE_S = 30


def transport_for(channel: str) -> Transport:
    """The configured transport of a channel; the capture mailbox when none is configured."""
    config = settings()
    if channel == Channel.email and config.smtp_url:
        return smtp.SmtpTransport(config.smtp_url)
    if channel == Channel.sms and config.sms_url:
        return sms.HttpSmsGateway(config.sms_url, auth=config.sms_auth)
    return capture.CAPTURE


def describe_transports() -> str:
    """Where email and SMS go, for the start-up line; ValueError for a setting that cannot work."""
    config = settings()
    email = (f"email by SMTP to {smtp.SmtpTransport(config.smtp_url).address}" if config.smtp_url
             else "email to the capture mailbox (no PIPEWRIGHT_SMTP_URL)")
    texts = ("SMS by the gateway at " + config.sms_url.split("?")[0] if config.sms_url
             else "SMS to the capture mailbox (no PIPEWRIGHT_SMS_URL)")
    return f"{email}, {texts}"


class _Misconfigured:
    """The channel's transport cannot be built from its settings (a malformed PIPEWRIGHT_SMTP_URL): every attempt
    fails with the reason and is retried, so the message shows what is wrong instead of staying queued unseen,
    and goes out once the setting is fixed."""

    def __init__(self, name: str, problem: str) -> None:
        self.name, self.problem = name, problem

    async def send(self, message: Message) -> Sent:
        raise TransientSendError(self.problem)


def _transport_of(channel: str) -> Transport:
    try:
        return transport_for(channel)
    except ValueError as exc:
        return _Misconfigured("smtp" if channel == Channel.email else "http", str(exc))


async def claim_due(*, limit: int = 200, ids: list[int] | None = None) -> list[int]:
    """Queued messages whose time has come (of `ids`, when given); each is pushed back by QUEUED_LEASE_S so the
    next poll does not send it again while a worker is on its way."""
    now = clock.utcnow()
    query = Message.filter(status=MessageStatus.queued, due_at__lte=now)
    if ids is not None:
        query, limit = query.filter(id__in=ids), len(ids)
    async with transaction():
        rows = await (
            query.order_by("due_at", "id").limit(limit)
            .select_for_update(skip_locked=True).only("id")
        )
        ids = [row.id for row in rows]
        if ids:
            await Message.filter(id__in=ids, status=MessageStatus.queued).update(
                due_at=now + timedelta(seconds=QUEUED_LEASE_S))
    return ids


async def give_back(message_ids: list[int]) -> None:
    """Claimed messages the broker did not take: due now again, so the next poll sends them."""
    await Message.filter(id__in=message_ids, status=MessageStatus.queued).update(due_at=clock.utcnow())


async def recover_expired(*, limit: int = 200, orphaned: bool = False) -> list[int]:
    """Messages whose sending attempt stopped renewing its lease (worker killed, host cut off): queued again,
    to be sent now, or failed when they have used every attempt.

    With `orphaned`, every sending message counts as lost: for a single process that starts up and knows no
    other worker can be sending them (embedded mode after a crash), so they need not wait out their lease."""
    now = clock.utcnow()
    recovered: list[int] = []
    why = "the process holding it stopped" if orphaned else "lease expired"
    async with transaction():
        expired = await (
            Message.filter(status=MessageStatus.sending, **({} if orphaned else {"lease_until__lt": now}))
            .order_by("lease_until").limit(limit).select_for_update(skip_locked=True)
        )
        for message in expired:
            lost = f"attempt {message.attempts} lost its worker ({why})"
            out_of_attempts = message.attempts >= settings().message_max_attempts
            values: dict[str, object] = ({"status": MessageStatus.failed, "reason": f"{lost}; gave up after {message.attempts} attempts"}
                      if out_of_attempts else {"status": MessageStatus.queued, "due_at": now, "reason": lost})
            taken = await Message.filter(id=message.id, status=MessageStatus.sending,
                                         attempts=message.attempts).update(lease_until=None, **values)
            if not taken:
                continue
            await DeliveryAttempt.filter(message_id=message.id, number=message.attempts).update(
                outcome="lost", answer=lost, finished_at=now)
            message.status, message.reason = str(values["status"]), str(values["reason"])
            await message_event(message)
            if not out_of_attempts:
                recovered.append(message.id)
    return recovered


async def deliver(message_id: int) -> MessageStatus | None:
    """One attempt at a queued message (what the worker actor calls). None if the message is not ours."""
    started = await _start(message_id)
    if started is None:
        return None
    message, transport = started
    if (entry := await suppressed(message.recipient)) is not None:  # suppressed since it was queued
        return await _record(message, transport, MessageStatus.suppressed, reason=suppression_reason(entry),
                             outcome="failed", answer="")
    config = settings()
    try:
        async with lease.kept(lambda: _renew_lease(message), lease_s=config.message_lease_s,
                              what=f"message {message.id} (attempt {message.attempts})"):
            sent = await asyncio.wait_for(transport.send(message), timeout=config.send_timeout_s)
    except lease.LeaseLost:  # another attempt is sending it: its outcome is the one recorded
        return None
    except PermanentSendError as exc:
        return await _record(message, transport, MessageStatus.failed, reason=f"refused: {exc.answer}",
                             outcome="failed", answer=exc.answer)
    except (TransientSendError, OSError, TimeoutError) as exc:
        answer = exc.answer if isinstance(exc, TransientSendError) else (
            f"no answer within {config.send_timeout_s} s" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}")
        return await _retry_or_fail(message, transport, answer)
    except Exception as exc:  # a bug in a transport: retried like a transient error, with the error shown
        log.exception("delivering message %s raised", message_id)
        return await _retry_or_fail(message, transport, f"{type(exc).__name__}: {exc}")
    return await _record(message, transport, MessageStatus.sent, sent=sent, outcome="sent", answer=sent.answer)


async def _start(message_id: int) -> tuple[Message, Transport] | None:
    message = await Message.get_or_none(id=message_id)
    if message is None or message.status != MessageStatus.queued:
        return None
    transport = _transport_of(message.channel)
    attempt, now = message.attempts + 1, clock.utcnow()
    lease_until = now + timedelta(seconds=settings().message_lease_s)
    async with transaction():
        taken = await Message.filter(id=message_id, status=MessageStatus.queued, attempts=message.attempts).update(
            status=MessageStatus.sending, attempts=attempt, lease_until=lease_until, due_at=None,
            transport=transport.name)
        if not taken:
            return None
        await DeliveryAttempt.create(message_id=message_id, number=attempt, transport=transport.name, started_at=now)
        message.status, message.attempts, message.lease_until, message.transport = (
            MessageStatus.sending, attempt, lease_until, transport.name)
        await message_event(message)
    return message, transport


async def _renew_lease(message: Message) -> bool:
    """The heartbeat of a sending attempt (server/lease.py): its lease runs on while the peer works."""
    lease_until = clock.utcnow() + timedelta(seconds=settings().message_lease_s)
    renewed = await Message.filter(id=message.id, status=MessageStatus.sending,
                                   attempts=message.attempts).update(lease_until=lease_until)
    return renewed > 0


async def _retry_or_fail(message: Message, transport: Transport, answer: str) -> MessageStatus | None:
    config = settings()
    if message.attempts >= config.message_max_attempts:
        return await _record(message, transport, MessageStatus.failed, outcome="failed", answer=answer,
                             reason=f"{answer} (gave up after {message.attempts} attempts)")
    delay_ms = config.message_retry_base_ms * 2 ** (message.attempts - 1)
    return await _record(message, transport, MessageStatus.queued, outcome="retry", answer=answer,
                         due_at=clock.utcnow() + timedelta(milliseconds=delay_ms),
                         reason=f"{answer}; attempt {message.attempts + 1} of {config.message_max_attempts} "
                                f"in {delay_ms / 1000:g} s")


async def _record(message: Message, transport: Transport, status: MessageStatus, *, outcome: str, answer: str,
                  sent: Sent | None = None, reason: str | None = None,
                  due_at: object = None) -> MessageStatus | None:
    """sending → status for this attempt only; anything else means another attempt took the message over."""
    now = clock.utcnow()
    values: dict[str, object] = {"status": status, "lease_until": None, "answer": answer, "reason": reason,
                                 "due_at": due_at}
    if sent is not None:
        values.update(sent_at=now, provider_id=sent.provider_id)
    async with transaction():
        taken = await Message.filter(id=message.id, status=MessageStatus.sending,
                                     attempts=message.attempts).update(**values)
        if not taken:
            log.warning("message %s attempt %s lost its lease before it could record '%s'",
                        message.id, message.attempts, outcome)
            return None
        await DeliveryAttempt.filter(message_id=message.id, number=message.attempts).update(
            outcome=outcome, answer=answer[:2000], finished_at=now)
        message.status, message.answer = status, answer
        message.reason = reason or ""
        await message_event(message)
        if status == MessageStatus.sent and message.channel == Channel.sms:
            await sms.apply_held_receipt(message.id)  # a delivery receipt that overtook the gateway's answer
    return status
