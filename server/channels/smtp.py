"""Email by SMTP (aiosmtplib): TLS from the start (smtps://), STARTTLS when offered or required, AUTH.

4xx replies and connection failures are transient (retried with backoff); 5xx replies are permanent.
"""

from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from server.channels import mail
from server.channels.transports import PermanentSendError, Sent, TransientSendError
from server.config import settings
from server.models import Message


class SmtpTransport:
    name = "smtp"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"PIPEWRIGHT_SMTP_URL must start with smtp:// or smtps://, not {parts.scheme}://")
        query = parse_qs(parts.query)
        self.hostname = parts.hostname or "localhost"
        self.use_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.use_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        starttls = query.get("starttls", ["auto"])[0]
        # aiosmtplib: None upgrades when the server offers STARTTLS, True insists, False never tries.
        self.start_tls: bool | None = None if starttls == "auto" else starttls in ("require", "1", "true")
        self.validate_certs = query.get("verify", ["1"])[0] not in ("0", "false", "no")

    @property
    def address(self) -> str:
        """Where it sends, without credentials."""
        return f"{'smtps' if self.use_tls else 'smtp'}://{self.hostname}:{self.port}"

    async def send(self, message: Message) -> Sent:
        raw = await mail.as_bytes(message)
        try:
            errors, reply = await aiosmtplib.send(
                raw, sender=message.sender, recipients=[message.recipient], hostname=self.hostname, port=self.port,
                username=self.username, password=self.password, use_tls=self.use_tls, start_tls=self.start_tls,
                validate_certs=self.validate_certs, timeout=settings().send_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusals = exc.recipients
            answer = "; ".join(f"{r.code} {r.message}" for r in refusals)
            if all(r.code >= 500 for r in refusals):
                raise PermanentSendError(answer) from exc
            raise TransientSendError(answer) from exc
        except aiosmtplib.SMTPResponseException as exc:
            answer = f"{exc.code} {exc.message}"
            if exc.code >= 500:
                raise PermanentSendError(answer) from exc
            raise TransientSendError(answer) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:  # could not connect, TLS failed, connection dropped
            raise TransientSendError(f"{type(exc).__name__}: {exc}") from exc
        return Sent(answer=f"250 {reply.strip()}")  # aiosmtplib gives the accepted DATA reply without its code
