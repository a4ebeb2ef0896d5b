"""Open and link tracking of outbound HTML emails: a pixel, and links rewritten to signed redirects of ours.

A redirect URL carries its target and an HMAC-SHA256 over (message uid, target) made with the installation's
tracking secret (a `ChannelHook` row, channel "tracking", made on first use), so only links we put in an email
redirect: nobody can use our domain as an open redirect. The pixel needs no signature: it only records an
open, and the message uid in its path is 128 random bits. Signing is deterministic, so every attempt at one
message sends the same bytes. Only http(s) links are rewritten; mailto:, tel:, anchors and relative links are
left as written, and so is the plain-text alternative (its links stay readable, clicks there are not seen).
"""

import base64
import hashlib
import hmac
import html as html_lib
import re
import secrets
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

from server.config import settings
from server.models import ChannelHook

CHANNEL = "tracking"
LINK_TAGS = ("a", "area")
_HREF = re.compile(r"""(\shref\s*=\s*)("[^"]*"|'[^']*'|[^\s"'>]+)""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


async def signing_key() -> bytes:
    """The installation's tracking secret: read from its row, made by whoever needs it first (web or worker)."""
    hook = await ChannelHook.get_or_none(channel=CHANNEL)
    if hook is None:
        # Two processes may both find no row: the insert that loses the race is ignored, both read the winner.
        await ChannelHook.bulk_create([ChannelHook(channel=CHANNEL, token=secrets.token_hex(32),
                                                   signing_secret=secrets.token_hex(32))], ignore_conflicts=True)
        hook = await ChannelHook.get(channel=CHANNEL)
    return hook.signing_secret.encode()


async def verifying_key() -> bytes | None:
    """The tracking secret if there is one yet (an anonymous click never makes it: no row, nothing we signed)."""
    hook = await ChannelHook.get_or_none(channel=CHANNEL)
    return hook.signing_secret.encode() if hook is not None else None


def base_url() -> str:
    """Where the tracking URLs point: the public URL, or the server's own address when none is set."""
    config = settings()
    return (config.public_url or f"http://{config.host}:{config.port}").rstrip("/")


def signature(key: bytes, uid: str, url: str) -> str:
    digest = hmac.new(key, f"{uid}\n{url}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed(key: bytes, uid: str, url: str, sig: str) -> bool:
    return hmac.compare_digest(signature(key, uid, url), sig)


def is_uid(text: str) -> bool:
    """A message uid as `outbox.new_uid` makes them (32 hex digits): anything else is not looked up."""
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def trackable(url: str) -> bool:
    return urlsplit(url.strip()).scheme.lower() in ("http", "https")


def pixel_url(uid: str) -> str:
    return f"{base_url()}/t/{uid}/open.gif"


def click_url(key: bytes, uid: str, url: str) -> str:
    return f"{base_url()}/t/{uid}/click?u={quote(url, safe='')}&s={signature(key, uid, url)}"


class _Links(HTMLParser):
    """Finds the start tags of links with their position, the tag as written and its (unescaped) href."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, int, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in LINK_TAGS:
            return
        href = next((value for name, value in attrs if name == "href"), None)
        written = self.get_starttag_text()
        if href and written:
            line, column = self.getpos()
            self.found.append((line, column, written, href))


def tracked_html(html: str, *, uid: str, key: bytes) -> str:
    """The HTML as sent: http(s) links go through our signed redirect, and a 1x1 pixel closes the body.

    Only the href of each link tag changes; everything else stays byte for byte as the template rendered it."""
    parser = _Links()
    parser.feed(html)
    parser.close()
    line_starts = [0]
    for match in re.finditer("\n", html):
        line_starts.append(match.end())
    pieces: list[str] = []
    done = 0
    for line, column, written, href in parser.found:
        start = line_starts[line - 1] + column
        if start < done or html[start:start + len(written)] != written or not trackable(href):
            continue
        rewritten = _HREF.sub(lambda m: f'{m.group(1)}"{html_lib.escape(click_url(key, uid, href.strip()))}"',
                              written, count=1)
        pieces += [html[done:start], rewritten]
        done = start + len(written)
    pieces.append(html[done:])
    body = "".join(pieces)
    pixel = (f'<img src="{html_lib.escape(pixel_url(uid))}" width="1" height="1" alt="" '
             'style="border:0;width:1px;height:1px">')
    ends = list(_BODY_END.finditer(body))
    if ends:
        at = ends[-1].start()
        return body[:at] + pixel + body[at:]
    return body + pixel
