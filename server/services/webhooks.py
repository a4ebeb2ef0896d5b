"""What each webhook channel's JSON means: calls, SMS replies, chat messages, web forms, SMS delivery receipts.

`handle` is what the webhook face calls once the delivery has proved itself (services/hooks.py): it checks the
payload, records it, and returns the JSON answer. An `Idempotency-Key` makes a retried delivery answer the first
one's answer and record nothing twice.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from server.channels.sms import RECEIPT_STATUSES, record_receipt
from server.errors import FieldError, NotFound, ValidationFailed
from server.kinds import Channel, Direction
from server.models import Message

Handler = Callable[[dict[str, Any], str | None], Awaitable[dict[str, Any]]]
HANDLERS: dict[str, Handler] = {}


async def handle(channel: str, payload: dict[str, Any], *, idempotency_key: str | None) -> dict[str, Any]:
    handler = HANDLERS.get(channel)
    if handler is None:
        raise NotFound("webhook", channel)
    return await handler(payload, idempotency_key)


# ---------------------------------------------------------------- sms_status: the SMS gateway's delivery receipts


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


HANDLERS["sms_status"] = sms_status
