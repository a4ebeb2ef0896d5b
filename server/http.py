"""HTTP hardening every face shares, as pure ASGI middleware: the client's address behind trusted proxies,
security headers, the admin's body limit, admission control under overload, and access logs without the
calendar secret.
"""

import asyncio
import html
import ipaddress
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Admin pages: only our own files run (htmx and admin.js, no inline script or style), nothing frames them.
ADMIN_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
             "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"  # JSON and iCalendar: nothing to run, nothing to frame
# GraphiQL (development only) runs from our own files (server/schema/graphiql/): nothing from elsewhere.
IDE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
           "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")

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


# Admission control -------------------------------------------------------------------------------

# Load balancers must still see whether the process is alive, and scrapers how overloaded it is (/metrics
# answers cached figures, computed at most every few seconds).
EXEMPT_PATHS = ("/health", "/metrics")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _overloaded(scope: Scope, retry_after_s: int, reason: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """A 503 in the face's own format: GraphQL errors for the API, a short page for the admin."""
    if scope["path"].startswith("/graphql"):
        body = json.dumps({"errors": [{"message": f"{reason}; nothing was done, retry in {retry_after_s} s",
                                       "extensions": {"code": "OVERLOADED", "retryAfter": retry_after_s}}]}).encode()
        content_type = b"application/json"
    else:
        body = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Busy · pipewright</title></head>'
                f"<body><main><h1>503 · Busy</h1><p>{html.escape(reason)}. Nothing was saved. Try again in "
                f"{retry_after_s} s.</p></main></body></html>").encode()
        content_type = b"text/html; charset=utf-8"
    return [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after_s).encode()), (b"cache-control", b"no-store")], body


async def _refuse(scope: Scope, send: Send, retry_after_s: int, reason: str) -> None:
    headers, body = _overloaded(scope, retry_after_s, reason)
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The body, read up to `limit` bytes (None beyond: the view refuses it), and a `receive` that replays what was
    read to the app before passing on the rest."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more and size <= limit:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
    read = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": read, "more_body": more}
        return await receive()

    return (None if more else read), replay


def _is_mutation(body: bytes) -> bool:
    """Whether a GraphQL POST runs a mutation (the operation it names, or its only one)."""
    if b"mutation" not in body:
        return False  # the common case, decided without parsing
    from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

    try:
        request = json.loads(body)
        operations = [d for d in parse(request["query"]).definitions if isinstance(d, OperationDefinitionNode)]
    except (ValueError, TypeError, KeyError, GraphQLError):
        return False  # the view answers the malformed request itself
    name = request.get("operationName")
    chosen = [op for op in operations if name is None or (op.name is not None and op.name.value == name)]
    return any(op.operation == OperationType.MUTATION for op in chosen[:1])


# The admin's live streams (server/admin_live.py) stay open like websockets and, like them, are bounded by the hub's
# per-user limit instead of holding a request slot for as long as a page is open.
LIVE_PREFIX = "/admin/live/"


class AdmissionControl:
    """At most `max_inflight` HTTP requests at once in this process; one more waits up to `wait_ms` for a turn,
    then gets 503 with Retry-After before anything of it ran, so latency stays bounded under overload and
    nothing is half-written. With `backlog` (embedded: rule runs waiting for the in-process worker), writes
    (GraphQL mutations, admin forms) get 503 while it is above `max_backlog`: a create answered now whose
    rules run seconds later is worse than a clear "retry in a second". /health and websockets are exempt."""

    def __init__(self, app: ASGIApp, *, max_inflight: int, wait_ms: int, retry_after_s: int,
                 backlog: Callable[[int], Awaitable[int]] | None = None, max_backlog: int = 0,
                 max_body: int = 1_000_000) -> None:
        self.app = app
        self.max_body = max_body  # a GraphQL body is read to tell a mutation only up to the view's own limit
        self.slots = asyncio.Semaphore(max_inflight) if max_inflight > 0 else None
        self.wait_s = wait_ms / 1000
        self.retry_after_s = retry_after_s
        self.backlog = backlog if max_backlog > 0 else None
        self.max_backlog = max_backlog
        self._behind_until = self._fresh_until = 0.0  # the backlog is counted at most every BACKLOG_EVERY_S

    BACKLOG_EVERY_S = 0.25

    async def _worker_behind(self) -> bool:
        assert self.backlog is not None
        now = time.monotonic()
        if now >= self._fresh_until:
            behind = await self.backlog(self.max_backlog) > self.max_backlog
            self._fresh_until = now + self.BACKLOG_EVERY_S
            self._behind_until = self._fresh_until if behind else 0.0
        return now < self._behind_until

    async def _behind(self, scope: Scope, receive: Receive) -> tuple[bool, Receive]:
        """Whether this is a write while the worker is behind. What it is, is decided first: a GraphQL query (a
        POST too) costs no backlog count."""
        if self.backlog is None or scope["method"] not in WRITE_METHODS:
            return False, receive
        if scope["path"].startswith("/graphql"):
            body, receive = await _read_body(receive, self.max_body)
            if body is None or not _is_mutation(body):
                return False, receive
        elif not _is_admin(scope["path"]):
            return False, receive
        return await self._worker_behind(), receive

    async def _admitted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Past the bound on requests in flight: a write still waits while the embedded worker is behind."""
        behind, receive = await self._behind(scope, receive)
        if behind:
            await _refuse(scope, send, self.retry_after_s, "the worker is behind with rule runs")
            return
        await self.app(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS or scope["path"].startswith(LIVE_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.slots is None:
            await self._admitted(scope, receive, send)
            return
        try:
            await asyncio.wait_for(self.slots.acquire(), self.wait_s)
        except TimeoutError:
            await _refuse(scope, send, self.retry_after_s, "the server is at its limit of requests in flight")
            return
        try:
            await self._admitted(scope, receive, send)
        finally:
            self.slots.release()
