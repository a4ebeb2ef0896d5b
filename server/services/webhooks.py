"""What each webhook channel's JSON means: calls, SMS replies, chat messages, web forms, SMS delivery receipts.

`handle` is what the webhook face calls once the delivery has proved itself (services/hooks.py): it checks the
payload, records it, and returns the JSON answer. An `Idempotency-Key` makes a retried delivery answer the first
one's answer and record nothing twice.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from server.errors import NotFound

Handler = Callable[[dict[str, Any], str | None], Awaitable[dict[str, Any]]]
HANDLERS: dict[str, Handler] = {}


async def handle(channel: str, payload: dict[str, Any], *, idempotency_key: str | None) -> dict[str, Any]:
    handler = HANDLERS.get(channel)
    if handler is None:
        raise NotFound("webhook", channel)
    return await handler(payload, idempotency_key)
