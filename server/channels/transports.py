"""What a transport is: hand one outbound message to its peer and say what the peer answered.

A transport raises `TransientSendError` when trying again later may work (connection refused, a 4xx SMTP
reply, a gateway 5xx) and `PermanentSendError` when it will not (a 5xx SMTP reply, a gateway 4xx); the
delivery step (`delivery.py`) turns those into a retry with backoff or a failed message.
"""

from dataclasses import dataclass
from typing import Protocol

from server.models import Message


class SendError(Exception):
    """The peer did not take the message; `answer` is what it said (shown on the message)."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        super().__init__(answer)


class TransientSendError(SendError):
    pass


class PermanentSendError(SendError):
    pass


@dataclass(frozen=True)
class Sent:
    answer: str  # the peer's reply, e.g. "250 2.0.0 Ok: queued as 4F2A"
    provider_id: str | None = None  # the gateway's id, to match its delivery receipts


class Transport(Protocol):
    name: str  # stored on the message: smtp | http | capture

    async def send(self, message: Message) -> Sent: ...
