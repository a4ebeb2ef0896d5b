"""Building an outbound email from its message row: headers, a text and an HTML part, DKIM signature.

The Message-ID is derived from the row's `uid`, so every attempt at one message sends the same Message-ID
(a receiver that deduplicates on it delivers once) and a reply's In-Reply-To finds the message again.
"""

import email.policy
import email.utils
from email.message import EmailMessage
from pathlib import Path

from server.config import settings
from server.models import Message


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower() or "localhost"


def message_id(message: Message) -> str:
    return f"<{message.uid}@{domain_of(message.sender or settings().mail_from)}>"


def uid_from_message_id(header: str) -> str | None:
    """Our row uid from a Message-ID we sent (`<uid@domain>`), None for anyone else's."""
    local = header.strip().strip("<>").partition("@")[0]
    return local if len(local) == 32 and all(c in "0123456789abcdef" for c in local) else None


def build(message: Message) -> EmailMessage:
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["Message-ID"] = message_id(message)
    mail["Date"] = email.utils.format_datetime(message.created_at)
    mail["From"] = email.utils.formataddr((message.sender_name, message.sender))
    mail["To"] = message.recipient
    mail["Subject"] = message.subject
    if reply_to := message.meta.get("reply_to"):
        mail["Reply-To"] = reply_to
    mail.set_content(message.text or "")
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail


def as_bytes(message: Message) -> bytes:
    """The email as sent: built, then DKIM-signed when a key is configured."""
    raw = build(message).as_bytes()
    config = settings()
    if not config.dkim_key_file:
        return raw
    return sign(raw, key=Path(config.dkim_key_file).read_bytes(), selector=config.dkim_selector,
                domain=config.dkim_domain or domain_of(message.sender))


def sign(raw: bytes, *, key: bytes, selector: str, domain: str) -> bytes:
    import dkim

    headers = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"mime-version", b"content-type"]
    signature: bytes = dkim.sign(raw, selector.encode(), domain.encode(), key, include_headers=headers)
    return signature + raw
