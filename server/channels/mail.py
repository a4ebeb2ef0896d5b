"""Building an outbound email from its message row: headers, a text and an HTML part, DKIM signature.

The Message-ID is derived from the row's `uid`, so every attempt at one message sends the same Message-ID
(a receiver that deduplicates on it delivers once) and a reply's In-Reply-To finds the message again. The HTML
part is sent with open and link tracking (`tracking.py`); the row keeps the HTML as the rule rendered it.
"""

import asyncio
import email.policy
import email.utils
from email.message import EmailMessage
from pathlib import Path

from server import files
from server.channels import tracking
from server.channels.transports import PermanentSendError, TransientSendError
from server.config import settings
from server.models import Document, Message

# The headers a DKIM signature covers. One absent when signing is signed as empty (RFC 6376 5.4), so it cannot be
# added later (a Reply-To sending answers elsewhere); the ones a forger would add a second copy of are listed
# twice ("over-signed"), so a second Subject or From above ours breaks the signature too.
DKIM_HEADERS = (b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
                b"references", b"mime-version", b"content-type", b"content-transfer-encoding")
DKIM_OVERSIGNED = (b"from", b"to", b"cc", b"subject", b"reply-to")
# relaxed/relaxed: relays that re-fold headers or touch whitespace in the body (trailing spaces, blank lines
# at the end) do not break the signature; the content itself is covered all the same.
DKIM_CANONICALIZATION = (b"relaxed", b"relaxed")


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower() or "localhost"


def message_id(message: Message) -> str:
    return f"<{message.uid}@{domain_of(message.sender or settings().mail_from)}>"


def uid_from_message_id(header: str) -> str | None:
    """Our row uid from a Message-ID we sent (`<uid@domain>`), None for anyone else's."""
    local = header.strip().strip("<>").partition("@")[0]
    return local if len(local) == 32 and all(c in "0123456789abcdef" for c in local) else None


def build(message: Message, *, tracking_key: bytes | None = None,
          attachments: list[tuple[str, bytes]] | None = None) -> EmailMessage:
    """The email of a message row; with `tracking_key`, its HTML part carries the open pixel and signed links;
    `attachments` are (file name, PDF) pairs."""
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
        html = tracking.tracked_html(message.html, uid=message.uid, key=tracking_key) if tracking_key else message.html
        mail.add_alternative(html, subtype="html")
    for filename, data in attachments or ():
        mail.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return mail


async def attached_pdfs(message: Message) -> list[tuple[str, bytes]]:
    """The PDFs of the documents the message attaches. TransientSendError while one is still being made (the
    attempt is retried with backoff), PermanentSendError when one could not be made or is gone."""
    pdfs = []
    for document_id in message.meta.get("attachments") or ():
        document = await Document.get_or_none(id=document_id)
        if document is None:
            raise PermanentSendError(f"attachment: document {document_id} no longer exists")
        if document.pdf_status == "failed":
            raise PermanentSendError(f"attachment: the PDF of document {document.number} could not be made: "
                                     f"{document.pdf_error}")
        if document.pdf_status != "ready" or not document.pdf_key:
            raise TransientSendError(f"waiting for the PDF of document {document.number}")
        filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in document.number) + ".pdf"
        pdfs.append((filename, await files.store().get(document.pdf_key)))
    return pdfs


async def as_bytes(message: Message) -> bytes:
    """The email as sent: built (HTML tracked), then DKIM-signed when a key is configured.

    Built in a thread: rewriting a long HTML body and dkimpy's RSA (pure Python, tens of ms) would otherwise hold
    the event loop, which embedded mode shares with the web server."""
    key = await tracking.signing_key() if message.html else None
    attachments = await attached_pdfs(message)
    return await asyncio.to_thread(_composed, message, key, attachments)


def _composed(message: Message, tracking_key: bytes | None, attachments: list[tuple[str, bytes]]) -> bytes:
    raw = build(message, tracking_key=tracking_key, attachments=attachments).as_bytes()
    config = settings()
    if not config.dkim_key_file:
        return raw
    return sign(raw, key=Path(config.dkim_key_file).read_bytes(), selector=config.dkim_selector,
                domain=config.dkim_domain or domain_of(message.sender))


def sign(raw: bytes, *, key: bytes, selector: str, domain: str) -> bytes:
    import dkim

    signature: bytes = dkim.sign(raw, selector.encode(), domain.encode(), key,
                                 include_headers=[*DKIM_HEADERS, *DKIM_OVERSIGNED],
                                 canonicalize=DKIM_CANONICALIZATION)
    return signature + raw
