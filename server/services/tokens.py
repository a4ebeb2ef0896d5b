"""API tokens: created and revoked by admins, stored as SHA-256, shown once, sent as `Authorization: Bearer`."""

import hashlib
import secrets
from datetime import timedelta

from server import clock, events
from server.db import transaction
from server.errors import NotFound, ValidationFailed
from server.models import ApiToken, User
from server.services.access import ROLES, SYSTEM, Acting, Actor, actor_for, require_admin

PREFIX = "pw_"
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_token(actor: Acting, *, user_id: int, name: str) -> tuple[ApiToken, str]:
    """A new token acting as `user_id`. The secret is returned once and never stored."""
    require_admin(actor)
    name = name.strip()
    if not name:
        raise ValidationFailed.one("name", "give the token a name (what uses it)")
    if len(name) > 200:
        raise ValidationFailed.one("name", "must be at most 200 characters")
    if not await User.exists(id=user_id, active=True):
        raise ValidationFailed.one("user_id", f"user {user_id} does not exist or is deactivated")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = await ApiToken.create(
        name=name, user_id=user_id, token_hash=digest(secret), prefix=secret[:8],
        created_by_id=actor.user_id,
    )
    return token, secret


async def revoke_token(actor: Acting, token_id: int) -> ApiToken:
    require_admin(actor)
    token = await ApiToken.get_or_none(id=token_id)
    if token is None:
        raise NotFound("API token", token_id)
    if token.revoked_at is None:
        async with transaction():
            token.revoked_at = clock.utcnow()
            await token.save(update_fields=["revoked_at"])
            # Open websockets of this token, in every web process, close when the hub reads this.
            await events.emit(events.ACCESS, {"token_id": token.id, "user_id": token.user_id}, audience=[])
    return token


async def list_tokens(actor: Acting) -> list[ApiToken]:
    require_admin(actor)
    return await ApiToken.all().prefetch_related("user").order_by("-id")


async def authenticate(secret: str) -> Actor | None:
    """The actor a bearer secret stands for, or None (unknown, revoked, or its user deactivated)."""
    found = await identify(secret)
    return found[1] if found else None


async def identify(secret: str) -> tuple[int, Actor] | None:
    """The token id and actor a bearer secret stands for (a websocket keeps the id to check again later)."""
    if not secret.startswith(PREFIX):
        return None
    token = await ApiToken.get_or_none(token_hash=digest(secret), revoked_at=None).prefetch_related("user")
    return (token.id, await _used(token)) if token is not None and token.user.active else None


async def reauthenticate(token_id: int) -> Actor | None:
    """The actor of an accepted token as things stand now: None once revoked or its user deactivated,
    else with the user's current role."""
    token = await ApiToken.get_or_none(id=token_id, revoked_at=None).prefetch_related("user")
    return await _used(token) if token is not None and token.user.active else None


async def _used(token: ApiToken) -> Actor:
    now = clock.utcnow()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        await ApiToken.filter(id=token.id).update(last_used_at=now)
    return actor_for(token.user)


async def issue_for_email(email: str, *, name: str, create_role: str | None = None) -> str:
    """For the `pipewright token` command (an operator at the console, acting as the system).

    With `create_role`, a missing user is created with that role first.
    """
    user = await User.get_or_none(email=email.strip().lower())
    if user is None:
        if create_role is None:
            raise ValidationFailed.one("email", f"no user has the email {email!r} (add --create ROLE to create one)")
        if create_role not in ROLES:
            raise ValidationFailed.one("create", f"role must be one of {', '.join(ROLES)}")
        user = await User.create(name=email.split("@")[0].title(), email=email.strip().lower(), role=create_role)
    _, secret = await create_token(SYSTEM, user_id=user.id, name=name)
    return secret
