"""Real peers of the customer channels, started by the tests: an SMTP server (aiosmtpd) that keeps what it
receives, and a stand-in for an SMS gateway.

The SMS gateway is a boundary we do not own (a provider's HTTP API), so it is the one fake: a small HTTP
server that records each request and answers like a generic JSON gateway. Everything else is real.
"""

import asyncio
import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed: EmailMessage = email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[assignment]
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "")

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else ""


class SmtpPeer:
    """An SMTP server on a loopback port that keeps every message it accepts. `refuse` makes it answer each
    RCPT with an SMTP reply instead (a 5xx refuses for good, a 4xx asks to try later); `data_delay_s` makes it
    take that long over each message before it keeps it and answers (a slow server, so a test can act while
    sends are in flight); `stop` / `start` take it down and bring it back on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.refuse: str | None = None
        self.data_delay_s = 0.0
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if self.data_delay_s:
            await asyncio.sleep(self.data_delay_s)
        with self._lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content)))
        return "250 2.0.0 Ok: queued"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
        self.refuse, self.data_delay_s = None, 0.0

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)


@dataclass
class SmsRequest:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class SmsGatewayStandIn:
    """A stand-in for an SMS provider's HTTP API (the boundary we do not own): records each request and
    answers 200 with an id, or `status` with `answer` when told to fail."""

    port: int = field(default_factory=free_port)
    requests: list[SmsRequest] = field(default_factory=list)
    status: int = 200
    answer: str = ""
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/messages"

    def start(self) -> None:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                gateway.requests.append(SmsRequest(dict(self.headers.items()), body))
                status = gateway.status
                payload = (gateway.answer or json.dumps({"id": f"gw-{len(gateway.requests)}"})).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def clear(self) -> None:
        self.requests.clear()
        self.status, self.answer = 200, ""
