"""The built-in capture mailbox: with no SMTP server or SMS gateway configured, messages are delivered here.

Delivery to the capture mailbox is the message row itself, marked sent by `capture`: the admin's mailbox
shows sender, recipient, subject, the rendered body and the status, so a new user sees what rules would
send, and nothing is silently dropped.
"""

from server.channels.transports import Sent
from server.models import Message


class CaptureMailbox:
    name = "capture"

    async def send(self, message: Message) -> Sent:
        return Sent(answer="kept in the capture mailbox (no SMTP server or SMS gateway is configured)")


CAPTURE = CaptureMailbox()
