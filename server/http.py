"""HTTP hardening every face shares, as pure ASGI middleware: the client's address behind trusted proxies,
security headers, the admin's body limit, and access logs without the calendar secret.
"""

import html
import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Admin pages: only our own files run (htmx and admin.js, no inline script or style), nothing frames them.
ADMIN_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
             "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"  # JSON and iCalendar: nothing to run, nothing to frame
# GraphiQL (development only) loads its scripts and styles from a CDN: only framing is refused there.
IDE_CSP = "frame-ancestors 'none'"

ANONYMOUS_BODY_BYTES = 64 * 1024  # the login, code and setup forms are tiny


# The client's address ------------------------------------------------------------------------------

def trusted_networks(values: Iterable[str]) -> list[Network]:
    """PIPEWRIGHT_TRUSTED_PROXIES as networks; a bad entry is an error naming the setting and the entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"PIPEWRIGHT_TRUSTED_PROXIES: {value!r} is not an IP address or network "
                             "(use e.g. 10.0.0.5 or 10.0.0.0/8, comma-separated)") from None
    return networks


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The peer itself, unless it is a trusted proxy: then the right-most address in X-Forwarded-For that is
    not a trusted proxy (what is left of it was written by the client and may be anything)."""
    if not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else peer


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", []) if key == name]


class TrustedProxies:
    """Replace the scope's client (and scheme) with what trusted proxies say; the peer's word otherwise."""

    def __init__(self, app: ASGIApp, *, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = list(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if self.trusted and scope["type"] in ("http", "websocket") and client and _is_trusted(client[0], self.trusted):
            scope = dict(scope)
            scope["client"] = (client_address(client[0], _headers(scope, b"x-forwarded-for"), self.trusted), 0)
            proto = [p.strip().lower() for h in _headers(scope, b"x-forwarded-proto") for p in h.split(",")]
            if proto and proto[-1] in ("http", "https"):
                secure = proto[-1] == "https"
                scope["scheme"] = ("https" if secure else "http") if scope["type"] == "http" else ("wss" if secure else "ws")
        await self.app(scope, receive, send)


# Security headers -------------------------------------------------------------------------------

def _is_admin(path: str) -> bool:
    return path == "/" or path == "/admin" or path.startswith("/admin/")


class SecurityHeaders:
    """nosniff, no framing and a referrer policy on every answer; a strict CSP on the admin."""

    def __init__(self, app: ASGIApp, *, development: bool) -> None:
        self.app = app
        self.development = development

    def _headers(self, path: str) -> list[tuple[bytes, bytes]]:
        if _is_admin(path):
            csp, referrer = ADMIN_CSP, "same-origin"
        else:
            csp, referrer = (IDE_CSP if self.development and path == "/graphql" else API_CSP), "no-referrer"
        return [
            (b"content-security-policy", csp.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", referrer.encode()),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._headers(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *((k, v) for k, v in extra if k not in present)]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# The admin's body limit ----------------------------------------------------------------------------

class BodyLimit:
    """How many bytes the body of this request may have. The admin's guard raises it once a session is known."""

    SCOPE_KEY = "pipewright.body_limit"

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    @classmethod
    def of(cls, scope: Scope) -> "BodyLimit | None":
        return scope.get(cls.SCOPE_KEY)


class BodyTooLarge(Exception):
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(f"request body larger than {max_bytes} bytes")


def _size(max_bytes: int) -> str:
    return f"{max_bytes // 1024} KiB" if max_bytes % 1024 == 0 else f"{max_bytes:,} bytes"


def _too_large_page(max_bytes: int) -> bytes:
    size = html.escape(_size(max_bytes))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Request too large · pipewright</title>'
        '<link rel="stylesheet" href="/admin/static/admin.css"></head><body><main id="main">'
        f"<h1>413 · Request too large</h1><p>This form sent more than {size}, more than this page accepts. "
        "Nothing was saved. Shorten what you entered and try again.</p>"
        '<p><a href="/admin">Back to the admin</a></p></main></body></html>'
    ).encode()


def limited_receive(receive: Receive, limit: BodyLimit, *, declared: bytes | None = None) -> Receive:
    """`receive` that raises BodyTooLarge once the body passes `limit.max_bytes` (or declares more): the limit
    is read at each message, so one raised meanwhile (the admin guard, after login) applies."""
    received = 0

    async def limited() -> Message:
        nonlocal received
        if declared is not None and declared.isdigit() and int(declared) > limit.max_bytes:
            raise BodyTooLarge(limit.max_bytes)
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit.max_bytes:
            raise BodyTooLarge(limit.max_bytes)
        return message

    return limited


class AdminBodyLimit:
    """Admin requests may send at most ANONYMOUS_BODY_BYTES until the guard has seen a session, then
    `logged_in_bytes`. Checked on the declared length before anything is read, and while the body streams in
    (chunked uploads declare none), so an oversized body is never read whole: 413 with a clear page."""

    def __init__(self, app: ASGIApp, *, logged_in_bytes: int) -> None:
        self.app = app
        self.logged_in_bytes = logged_in_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_admin(scope["path"]):
            await self.app(scope, receive, send)
            return
        limit = BodyLimit(ANONYMOUS_BODY_BYTES)
        scope = {**scope, BodyLimit.SCOPE_KEY: limit}
        declared = next((value for key, value in scope.get("headers", []) if key == b"content-length"), None)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive(receive, limit, declared=declared), tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            body = _too_large_page(exc.max_bytes)
            await send({"type": "http.response.start", "status": 413, "headers": [
                (b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]})
            await send({"type": "http.response.body", "body": body})


# Access logs -------------------------------------------------------------------------------------

CALENDAR_SECRET = re.compile(r"^/calendar/[^/?#]+\.ics")


def redact_path(path: str) -> str:
    """A request path fit for logs: the secret of a calendar feed URL replaced (the URL alone grants access)."""
    return CALENDAR_SECRET.sub("/calendar/***.ics", path)


class RedactSecrets(logging.Filter):
    """On uvicorn's access log: (client, method, path, http version, status) with the path redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        args: Any = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True
