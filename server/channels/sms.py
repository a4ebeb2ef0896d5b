"""SMS through a generic HTTP/JSON gateway: POST {to, from, text, reference} with the configured
Authorization header and an Idempotency-Key, so a repeated attempt at one message is one SMS at a gateway
that honours the key; and the gateway's delivery receipts, which move a sent message to delivered or bounced.

The gateway answers 2xx with JSON carrying its id (`id`, `message_id` or `sid`), which delivery receipts
name. 408, 409 (the IETF Idempotency-Key draft's "a request with this key is still being processed"), 425,
429 and 5xx are transient (retried); any other status (a 3xx redirect included: nothing was accepted) is
permanent.
"""

import json
import logging
from typing import Any

import httpx

from server import clock
from server.channels.outbox import message_event
from server.channels.transports import PermanentSendError, Sent, TransientSendError
from server.config import settings
from server.db import transaction
from server.kinds import MessageStatus
from server.models import Message
from server.rules import clients

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = {408, 409, 425, 429}
MAX_PROVIDER_ID_CHARS = 255  # Message.provider_id


def e164(number: str, *, region: str) -> str:
    """A recipient's number in E.164; ValueError saying why for anything that is not a valid number."""
    try:
        return clients.e164(number, region=region)
    except clients.NotAPhoneNumber as exc:
        national = f" (national numbers are read as {region.upper()})" if exc.parsed else ""
        raise ValueError(f"'{number[:100]}' is {exc}{national}") from None


class HttpSmsGateway:
    name = "http"

    def __init__(self, url: str, *, auth: str = "") -> None:
        self.url = url
        self.auth = auth

    async def send(self, message: Message) -> Sent:
        headers = {"Idempotency-Key": message.uid, "Content-Type": "application/json"}
        if self.auth:
            headers["Authorization"] = self.auth
        body = {"to": message.recipient, "from": message.sender, "text": message.text, "reference": message.uid}
        timeout = settings().send_timeout_s
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10))) as client:
                response = await client.post(self.url, headers=headers, content=json.dumps(body))
        except httpx.HTTPError as exc:
            raise TransientSendError(f"{type(exc).__name__}: {exc}") from exc
        answer = f"{response.status_code} {response.text[:500]}".strip()
        if response.status_code in TRANSIENT_STATUSES or response.status_code >= 500:
            raise TransientSendError(answer)
        if not 200 <= response.status_code < 300:
            raise PermanentSendError(answer)
        return Sent(answer=answer, provider_id=_provider_id(response))


def _provider_id(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    found = next((str(data[k]) for k in ("id", "message_id", "sid") if data.get(k) not in (None, "")), None)
    if found is not None and len(found) > MAX_PROVIDER_ID_CHARS:
        # Kept, it would fail recording `sent` after the gateway took the SMS; receipts still match the reference.
        log.warning("the SMS gateway's id is %s characters long; receipts must name our reference", len(found))
        return None
    return found


# ---------------------------------------------------------------- delivery receipts

# The gateway's words → the message's status.
RECEIPT_STATUSES = {
    "delivered": MessageStatus.delivered,
    "failed": MessageStatus.bounced, "undelivered": MessageStatus.bounced, "rejected": MessageStatus.bounced,
}
HELD = "held_receipt"  # meta: a receipt that came while the message was still being sent


async def record_receipt(message: Message, status: str, *, error: str = "") -> tuple[Message, str]:
    """Apply a delivery receipt (`status` a key of RECEIPT_STATUSES): (the message as it is now, what happened:
    applied | held | unchanged).

    A receipt can overtake the answer to our POST (the gateway delivers before we record `sent`): one that finds
    the message queued or sending is held in its meta and applied when the attempt records `sent`. The first
    receipt that applies decides (a repeat, or a later contradicting one, changes nothing), and a delivered
    receipt also applies to a message we gave up on (our attempts timed out, yet the gateway had taken it)."""
    receipt = {"status": status, "error": error, "received_at": clock.utcnow().isoformat()}
    for _ in range(5):  # each pass loses only to a change of the message by someone else: then look again
        current = await Message.get(id=message.id)
        if current.status in (MessageStatus.queued, MessageStatus.sending):
            if HELD in current.meta:
                return current, "held"  # the first one waits already
            held = await Message.filter(id=current.id, status=current.status, attempts=current.attempts).update(
                meta={**current.meta, HELD: receipt})
            if held:
                return current, "held"
            continue
        async with transaction():
            applied = await _apply(current, receipt)
        if applied is None:
            return current, "unchanged"
        if applied:
            return current, "applied"
    return await Message.get(id=message.id), "unchanged"


async def apply_held_receipt(message_id: int) -> None:
    """After an attempt recorded `sent` (inside its transaction): the receipt that overtook it, if one did."""
    current = await Message.get(id=message_id)
    receipt = current.meta.get(HELD)
    if current.status == MessageStatus.sent and isinstance(receipt, dict):
        await _apply(current, receipt)


async def _apply(message: Message, receipt: dict[str, Any]) -> bool | None:
    """sent (or failed, for a delivered receipt) → delivered | bounced, compare-and-set on the status. None when
    the receipt does not apply to the message's status, False when the message changed meanwhile."""
    word = str(receipt["status"])
    status = RECEIPT_STATUSES[word]
    if not (message.status == MessageStatus.sent
            or (message.status == MessageStatus.failed and status == MessageStatus.delivered)):
        return None
    now = clock.utcnow()
    meta = {k: v for k, v in message.meta.items() if k != HELD} | {"receipt": receipt}
    values: dict[str, Any] = {"status": status, "meta": meta}
    if status == MessageStatus.delivered:
        values.update(delivered_at=now, reason=None)
    else:
        error = str(receipt.get("error") or "").strip()
        values["reason"] = f"the gateway reported it {word}" + (f": {error[:1000]}" if error else "")
    if not await Message.filter(id=message.id, status=message.status).update(**values):
        return False
    for name, value in values.items():
        setattr(message, name, value)
    await message_event(message, receipt=word)
    return True
