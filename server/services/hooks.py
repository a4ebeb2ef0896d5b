"""The inbound webhooks' secrets: one secret URL per channel and the key its bodies are signed with.

A delivery proves itself twice: the URL's token (so the endpoint is not guessable) and an HMAC-SHA256 of the
raw body with the channel's signing secret in `X-Pipewright-Signature: sha256=<hex>` (so a leaked URL in a
log is not enough to post). Both are compared in constant time; a wrong token answers like a missing page.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from server.config import settings
from server.errors import NotFound, PipewrightError
from server.models import ChannelHook
from server.services.access import Acting, require_admin

# The channels with a webhook, and what each carries.
CHANNELS = {
    "calls": "incoming, outgoing and missed calls (with duration and recording link)",
    "sms": "SMS replies from customers",
    "chat": "chat messages",
    "forms": "web form submissions (a form can create a lead when the sender is unknown)",
    "sms_status": "the SMS gateway's delivery receipts",
    "payments": "payments received, from a payment provider",
}
SIGNATURE_HEADER = "X-Pipewright-Signature"


class SignatureInvalid(PipewrightError):
    """The body's signature is missing or does not match the channel's signing secret."""


@dataclass(frozen=True)
class HookInfo:
    channel: str
    description: str
    url: str
    signing_secret: str


async def hook(channel: str) -> ChannelHook:
    """The channel's secrets, made on first use."""
    if channel not in CHANNELS:
        raise NotFound("webhook channel", channel)
    found = await ChannelHook.get_or_none(channel=channel)
    if found is not None:
        return found
    try:
        return await ChannelHook.create(channel=channel, token=secrets.token_urlsafe(24),
                                        signing_secret=secrets.token_hex(32))
    except IntegrityError:  # made by a concurrent first use
        return await ChannelHook.get(channel=channel)


def signature(secret: str, body: bytes) -> str:
    """What a sender puts in X-Pipewright-Signature for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def verify(channel: str, token: str, body: bytes, signed: str | None) -> ChannelHook:
    """The channel whose URL and signature a delivery carries; NotFound for a wrong channel or token,
    SignatureInvalid for a missing or wrong signature."""
    if channel not in CHANNELS:
        raise NotFound("webhook", channel)
    found = await ChannelHook.get_or_none(channel=channel)
    if found is None or not hmac.compare_digest(found.token.encode(), token.encode()):
        raise NotFound("webhook", channel)
    if not signed:
        raise SignatureInvalid(f"sign the body: {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body with the "
                               "channel's signing secret>")
    if not hmac.compare_digest(signature(found.signing_secret, body).encode(), signed.strip().encode()):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match the body (HMAC-SHA256 with the channel's signing "
                               "secret, hex, prefixed sha256=)")
    return found


def _base_url() -> str:
    config = settings()
    return config.public_url.rstrip("/") or f"http://{config.host}:{config.port}"


async def hooks(*, actor: Acting) -> list[HookInfo]:
    """Every channel's URL and signing secret, for admins configuring a provider."""
    require_admin(actor)
    return [HookInfo(channel, description, f"{_base_url()}/hooks/{channel}/{(await hook(channel)).token}",
                     (await hook(channel)).signing_secret) for channel, description in CHANNELS.items()]


async def rotate(channel: str, *, actor: Acting) -> HookInfo:
    """New URL and signing secret for a channel: the old ones stop working at once."""
    require_admin(actor)
    current = await hook(channel)
    current.token, current.signing_secret = secrets.token_urlsafe(24), secrets.token_hex(32)
    await current.save(update_fields=["token", "signing_secret"])
    return HookInfo(channel, CHANNELS[channel], f"{_base_url()}/hooks/{channel}/{current.token}", current.signing_secret)
