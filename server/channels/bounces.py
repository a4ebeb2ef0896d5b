"""Reading delivery reports: a DSN (RFC 3464, `multipart/report; report-type=delivery-status`) or an ARF
complaint (RFC 5965, `report-type=feedback-report`) that came back to the inbound address.

Pure functions over a parsed `email.message.EmailMessage`: what the report says happened, to whom, and which
of our messages it is about (the uids of the Message-IDs it quotes). Recording it is the services' job.
"""

import email.parser
import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from typing import Literal

from server.channels.mail import uid_from_message_id

DIAGNOSTIC_CHARS = 1000
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient block of a DSN: what became of the message for this address."""

    address: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # the enhanced status code, e.g. 5.1.1
    diagnostic: str  # the remote server's answer, or the status when it gave none

    @property
    def permanent(self) -> bool:
        """A hard bounce: the address will not take mail (RFC 3464: Action failed with a 5.x.x status)."""
        return self.action == "failed" and self.status.startswith("5")

    @property
    def transient(self) -> bool:
        """Still trying (delayed), or failed with a 4.x.x status: the address may take mail later."""
        return self.action == "delayed" or (self.action == "failed" and self.status.startswith("4"))


@dataclass(frozen=True)
class Report:
    """A delivery report about messages we sent."""

    kind: Literal["delivery", "complaint"]
    uids: list[str]  # our messages it is about, from the quoted Message-IDs
    recipients: list[RecipientStatus] = field(default_factory=list)  # a DSN's recipient blocks
    feedback_type: str = ""  # an ARF complaint's Feedback-Type (abuse, fraud, …)
    complainant: str = ""  # an ARF complaint's Original-Rcpt-To, when given


def report_of(mail: EmailMessage) -> Report | None:
    """The delivery report `mail` is, or None for any other mail (a customer's)."""
    if mail.get_content_type() != "multipart/report":
        return None
    report_type = str(mail.get_param("report-type", "", header="content-type")).lower()
    if report_type == "delivery-status":
        return Report("delivery", _quoted_uids(mail), recipients=_recipient_blocks(mail))
    if report_type == "feedback-report":
        fields = _first_part_fields(mail, "message/feedback-report")
        return Report("complaint", _quoted_uids(mail), feedback_type=_field(fields, "Feedback-Type").lower(),
                      complainant=_address(_field(fields, "Original-Rcpt-To")))
    return None


def _recipient_blocks(mail: EmailMessage) -> list[RecipientStatus]:
    blocks = _blocks(mail, "message/delivery-status")
    recipients = []
    for block in blocks[1:]:  # the first block is per-message (Reporting-MTA, Arrival-Date)
        address = _address(_field(block, "Final-Recipient") or _field(block, "Original-Recipient"))
        if not address:
            continue
        status = _field(block, "Status").split()[0] if _field(block, "Status") else ""
        diagnostic = _field(block, "Diagnostic-Code")
        diagnostic = diagnostic.partition(";")[2].strip() if ";" in diagnostic else diagnostic
        recipients.append(RecipientStatus(address=address, action=_field(block, "Action").lower(), status=status,
                                          diagnostic=(diagnostic or status)[:DIAGNOSTIC_CHARS]))
    return recipients


def _quoted_uids(mail: EmailMessage) -> list[str]:
    """Our uids among the Message-IDs of the returned message (or its headers), then the report's own
    In-Reply-To / References (some servers quote nothing but thread the report)."""
    ids: list[str] = []
    for part in mail.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                ids += _MESSAGE_ID.findall(str(inner.get("Message-ID", "")))
        elif kind in ("text/rfc822-headers", "message/global-headers"):
            headers = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(_text(part))
            ids += _MESSAGE_ID.findall(str(headers.get("Message-ID", "")))
    for name in ("In-Reply-To", "References"):
        ids += _MESSAGE_ID.findall(_raw(mail, name))
    uids: list[str] = []
    for message_id in ids:
        uid = uid_from_message_id(message_id)
        if uid and uid not in uids:
            uids.append(uid)
    return uids


def _blocks(mail: EmailMessage, content_type: str) -> list[Message]:
    """The header blocks of a `message/delivery-status` part (the email package parses them as messages)."""
    for part in mail.walk():
        if part.get_content_type() == content_type:
            payload = part.get_payload()
            if isinstance(payload, list):
                return [block for block in payload if isinstance(block, Message)]
            # Base64 or quoted-printable delivery-status (rare): decode and parse the blocks ourselves.
            return [email.parser.HeaderParser(policy=email.policy.compat32).parsestr(block)
                    for block in re.split(r"\r?\n\s*\r?\n", _text(part)) if block.strip()]
    return []


def _first_part_fields(mail: EmailMessage, content_type: str) -> Message | None:
    for part in mail.walk():
        if part.get_content_type() == content_type:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            return email.parser.HeaderParser(policy=email.policy.compat32).parsestr(_text(part))
    return None


def _text(part: Message) -> str:
    raw = part.get_payload(decode=True)
    if isinstance(raw, bytes):
        return raw.decode(part.get_content_charset() or "utf-8", errors="replace")
    payload = part.get_payload()
    return payload if isinstance(payload, str) else ""


def _field(block: Message | None, name: str) -> str:
    """A report field, unfolded (the Diagnostic-Code of a long answer spans several lines)."""
    if block is None:
        return ""
    return " ".join(str(block.get(name, "")).split())


def _raw(mail: EmailMessage, name: str) -> str:
    """A header's raw text: the structured parser of policy.default raises on some malformed values."""
    for key, value in mail.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _address(value: str) -> str:
    """The address of a `rfc822; anna@acme.example` field (or of a bare `<anna@acme.example>`)."""
    address = value.partition(";")[2] if ";" in value else value
    return address.strip().strip("<>").strip().lower()
