"""The inbound SMTP receiver (aiosmtpd): a customer's mail becomes customer activity on their open leads and
deals, a delivery report about one of our messages becomes a bounce or a complaint.

It runs on the loop of the process that owns the ORM (the web server's in `pipewright serve`, its own in
`pipewright mailin`). Every answer to DATA says what became of the mail, and is given only once it is stored
or refused: 250 stored / 250 ignored, 550 for a sender we cannot place, 451 when the database could not take
it (the sending server retries). Parsing runs in a thread, so a large message does not stall the loop.
"""

import asyncio
import hashlib
import logging
import socket
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from server.channels.bounces import Report, report_of
from server.channels.mail import uid_from_message_id
from server.config import settings
from server.errors import ValidationFailed
from server.kinds import Channel
from server.rules.actions.send_email import text_of
from server.services import bounces, inbound
from server.services.inbound import Inbound

log = logging.getLogger(__name__)

# Idle time allowed between a client's commands (and for the whole DATA transfer) before the connection is closed.
SESSION_TIMEOUT_S = 60
MAX_SESSIONS = 50  # concurrent SMTP connections; one more is answered 421 (the client retries later)
RECORD_TIMEOUT_S = 30  # a database that takes longer gets a 451: the sending server retries
REPLY_CHARS = 400  # SMTP reply lines stay well under RFC 5321's 512 octets
MAX_REFERENCES = 50  # Message-IDs of a References header looked at


class Refused(Exception):
    """The mail is refused with this SMTP reply, before anything is stored."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass
class ParsedMail:
    """One received mail: a delivery report about our messages, a customer's mail, or an automatic reply."""

    report: Report | None = None
    inbound: Inbound | None = None
    automatic: str = ""  # why it is an automatic message (an out-of-office reply, a notification): not the customer's


def reply(code: int, enhanced: str, text: str) -> str:
    """An SMTP reply line: one line of ASCII whatever the text holds (an address may carry CR LF or UTF-8)."""
    line = " ".join(text.split()).encode("ascii", "backslashreplace").decode("ascii")
    return f"{code} {enhanced} {line[:REPLY_CHARS]}"


def parse(raw: bytes, *, envelope_from: str, recipients: list[str]) -> ParsedMail:
    """What a received mail is (CPU work: run it in a thread). Raises Refused for a mail without a usable sender."""
    mail = message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)  # policy.default makes EmailMessage
    report = report_of(mail)
    if report is not None:
        return ParsedMail(report=report)
    automatic = _raw_header(mail, "Auto-Submitted").strip().lower()
    if automatic and automatic != "no":  # RFC 3834: out-of-office and other automatic replies
        return ParsedMail(automatic=f"an automatic reply (Auto-Submitted: {automatic})")
    if envelope_from.strip() in ("", "<>"):  # RFC 5321 4.5.5: the null sender <> is for notifications (bounces not in DSN form)
        return ParsedMail(automatic="an automatic notification (from the null sender <>)")
    sender, name = _sender(mail, envelope_from)
    html = _body(mail, "html")
    text = _body(mail, "plain") or (text_of(html) if html else "")
    message_id = _raw_header(mail, "Message-ID").strip()
    replied: list[str] = []
    for header in ("In-Reply-To", "References"):
        for word in _raw_header(mail, header).split()[:MAX_REFERENCES]:
            uid = uid_from_message_id(word)
            if uid and uid not in replied:
                replied.append(uid)
    return ParsedMail(inbound=Inbound(
        channel=Channel.email, sender=sender, recipient=recipients[0] if recipients else _raw_header(mail, "To")[:320],
        subject=_subject(mail), text=text, html=html, header_message_id=message_id, replied_uids=replied,
        # A sending server that missed our 250 sends the same mail again: keyed by its Message-ID it is stored once.
        idempotency_key=f"message-id:{hashlib.sha256(message_id.encode()).hexdigest()}" if message_id else None,
        meta={"from_name": name, "envelope_from": envelope_from, "recipients": recipients[:20]},
    ))


def _sender(mail: EmailMessage, envelope_from: str) -> tuple[str, str]:
    """(address, display name) from the From header; the envelope's MAIL FROM when the mail has no From."""
    raw = _raw_header(mail, "From")
    if not raw.strip():
        if _is_address(envelope_from):
            return envelope_from.strip().lower(), ""
        raise Refused(reply(550, "5.1.7", "the mail has no From header and no envelope sender (MAIL FROM) "
                                          "to tell who sent it"))
    try:
        addresses = mail["From"].addresses
    except Exception:  # the stdlib's header parser raises on some malformed values (IndexError on '<@>')
        addresses = ()
    for address in addresses:
        if _is_address(address.addr_spec):
            return address.addr_spec.lower(), address.display_name
    raise Refused(reply(550, "5.1.7", f"the From header has no email address: {raw.strip()!r}"))


def _is_address(value: str) -> bool:
    local, at, domain = value.strip().rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() or c in "<>," for c in value.strip())


def _body(mail: EmailMessage, subtype: str) -> str:
    part = mail.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return ""
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError):  # an unknown or lying charset: keep what can be read
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""


def _subject(mail: EmailMessage) -> str:
    try:
        return " ".join(str(mail.get("Subject", "")).split())
    except Exception:  # a malformed encoded word: the raw text is still the subject
        return " ".join(_raw_header(mail, "Subject").split())


def _raw_header(mail: EmailMessage, name: str) -> str:
    for key, value in mail.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


class MailHandler:
    """aiosmtpd's handler: every RCPT is ours (the MTA in front, or DNS, decides what reaches us), and DATA is
    answered once the mail is recorded."""

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if isinstance(server, _Session):
            server.recording()
        raw = envelope.original_content or b""
        try:
            parsed = await asyncio.to_thread(parse, raw, envelope_from=str(envelope.mail_from or ""),
                                             recipients=[str(r) for r in envelope.rcpt_tos])
        except Refused as refused:
            answer = refused.reply
        except Exception:
            log.exception("parsing a received mail of %d bytes failed", len(raw))
            answer = reply(550, "5.6.0", "the mail could not be parsed")
        else:
            answer = await self._answer(parsed)
        log.info("mail from %s (%d bytes): %s", envelope.mail_from or "<>", len(raw), answer)
        return answer

    async def _answer(self, parsed: ParsedMail) -> str:
        try:
            return await asyncio.wait_for(self._record(parsed), timeout=RECORD_TIMEOUT_S)
        except ValidationFailed as exc:
            unknown = [e.message for e in exc.errors if e.field == "sender"]
            if unknown:
                return reply(550, "5.1.0", unknown[0])
            # The same Message-ID is being recorded by a parallel delivery: the retry gets its answer.
            return reply(451, "4.3.0", f"not stored now, try again later: {exc}")
        except TimeoutError:
            log.error("recording a received mail took over %d s", RECORD_TIMEOUT_S)
            return reply(451, "4.3.0", "the database did not answer in time; try again later")
        except Exception:
            log.exception("recording a received mail failed")
            return reply(451, "4.3.0", "the mail could not be stored now (database error); try again later")

    async def _record(self, parsed: ParsedMail) -> str:
        if parsed.report is not None:
            done = await bounces.record_report(parsed.report)
            if done.message is None:
                return reply(250, "2.0.0", "ignored: a delivery report about no message sent from here")
            suppressed = f", {done.suppressed} suppressed" if done.suppressed else ""
            return reply(250, "2.0.0", f"report recorded: message {done.message.id} {done.outcome}{suppressed}")
        if parsed.inbound is None:
            return reply(250, "2.0.0", f"ignored: {parsed.automatic}, not the customer's")
        recorded = await inbound.record(parsed.inbound)
        if recorded.blocked:
            return reply(250, "2.0.0", "ignored: the sender is on the exception list")
        assert recorded.message is not None
        on = ", ".join(f"{kind} {ident}" for kind, ident in recorded.elements) or "no lead or deal"
        again = " (already stored)" if recorded.duplicate else ""
        return reply(250, "2.0.0", f"stored as message {recorded.message.id} on {on}{again}")


class _Sessions:
    """The open SMTP connections of one receiver: counted against a limit, closed when it stops."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: set["_Session"] = set()


class _Session(SMTP):
    """aiosmtpd's protocol, one per connection, refusing connections past the limit with 421."""

    def __init__(self, handler: MailHandler, *, sessions: _Sessions, **options: Any) -> None:
        super().__init__(handler, **options)
        self._sessions = sessions
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._counted:  # STARTTLS calls it again for the same connection
            return
        if len(self._sessions.open) >= self._sessions.limit:
            # Before the greeting: aiosmtpd's client task has not started, so cancelling it is all it takes.
            if self._handler_coroutine is not None:
                self._handler_coroutine.cancel()
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(reply(421, "4.3.2", "too many connections; try again later").encode() + b"\r\n")
            transport.close()
            return
        self._counted = True
        self._sessions.open.add(self)

    def recording(self) -> None:
        """The mail is in: its recording gets the whole idle timeout (more than RECORD_TIMEOUT_S), however long
        the transfer took (aiosmtpd does not restart the timer during DATA)."""
        self._reset_timeout()

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted:
            self._sessions.open.discard(self)
            self._counted = False
        super().connection_lost(error)


@dataclass
class Receiver:
    """A listening receiver: `address` is where it listens (host:port, the port chosen when 0 was asked)."""

    server: asyncio.Server
    sessions: _Sessions
    address: str

    async def stop(self) -> None:
        self.server.close()
        for session in list(self.sessions.open):  # a client in the middle of a session would hold the shutdown
            if session.transport is not None:
                session.transport.close()
        await self.server.wait_closed()


def listen_address(value: str) -> tuple[str, int]:
    """host:port (or [v6]:port) of PIPEWRIGHT_MAILIN."""
    host, colon, port = value.strip().rpartition(":")
    if not colon or not port.isdigit() or not host or int(port) > 65535:
        raise ValueError(f"PIPEWRIGHT_MAILIN must be host:port (e.g. 127.0.0.1:2525), not {value!r}")
    return host.strip("[]"), int(port)


async def start(listen: str, *, max_bytes: int | None = None, timeout_s: float = SESSION_TIMEOUT_S,
                max_sessions: int = MAX_SESSIONS) -> Receiver:
    """Listen for mail on this loop. Bigger messages than `max_bytes` (default: settings().mailin_max_bytes) get
    552, as do those announced bigger in MAIL FROM's SIZE."""
    host, port = listen_address(listen)
    chatty = logging.getLogger("mail.log")  # aiosmtpd logs every SMTP command at INFO; one line per mail is ours
    if chatty.level == logging.NOTSET:
        chatty.setLevel(logging.WARNING)
    loop = asyncio.get_running_loop()
    sessions = _Sessions(max_sessions)
    handler = MailHandler()
    # aiosmtpd would look the host name up in DNS for every connection: once here, without DNS.
    hostname = socket.gethostname()
    limit = max_bytes if max_bytes is not None else settings().mailin_max_bytes

    def session() -> _Session:
        return _Session(handler, sessions=sessions, data_size_limit=limit, enable_SMTPUTF8=True,
                        hostname=hostname, timeout=timeout_s, loop=loop)

    try:
        server = await loop.create_server(session, host, port)
    except OSError as exc:
        raise OSError(exc.errno, f"the inbound mail receiver cannot listen on {listen}: {exc.strerror} "
                      "(set PIPEWRIGHT_MAILIN to another host:port, or to nothing to turn it off)") from exc
    bound = server.sockets[0].getsockname()
    return Receiver(server, sessions, f"{bound[0]}:{bound[1]}")
