"""Idempotent creates: a create sent again with the same key by the same user answers what the first one made.

A client that lost the answer to a create (committed, then the network failed) sends it again with the same
`idempotencyKey`; it gets the first deal back instead of a second one with its own rule runs. The key is
written in the create's own transaction, before the create: a concurrent retry waits on the key's unique index
until the first commits, then answers its result. Keys are kept PIPEWRIGHT_IDEMPOTENCY_KEY_RETENTION_H hours.
"""

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from tortoise.exceptions import IntegrityError

from server import clock
from server.config import settings
from server.db import transaction
from server.errors import ValidationFailed
from server.models import IdempotencyKey
from server.services.access import Acting

MAX_KEY_LENGTH = 200
FIELD = "idempotency_key"


class Made(Protocol):
    id: int


M = TypeVar("M", bound=Made)


def fingerprint(given: Any) -> str:
    """A hash of the input as sent: the same key with other input is refused, not answered."""
    text = json.dumps(given, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def scope_of(actor: Acting, operation: str) -> str:
    return f"{'user:' + str(actor.user_id) if actor.user_id is not None else 'system'}:{operation}"


def _expired_before() -> Any:
    return clock.utcnow() - timedelta(hours=settings().idempotency_key_retention_h)


async def once(*, key: str | None, operation: str, given: Any, result_type: str, create: Callable[[], Awaitable[M]],
               load: Callable[[int], Awaitable[M]], actor: Acting) -> M:
    """`create()` once per (`actor`, `operation`, `key`); a repeat answers `load(id of the first result)`.

    Without a key, `create()` as it is. The same key with other input (`given`) is a ValidationFailed naming
    the key."""
    if key is None:
        return await create()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.strip():
        raise ValidationFailed.one(FIELD, f"must be 1 to {MAX_KEY_LENGTH} characters, not only spaces")
    scope, printed = scope_of(actor, operation), fingerprint(given)
    for _ in range(2):  # a concurrent create with the key wins the unique index: the second pass answers it
        first = await _known(scope, key, printed)
        if first is not None:
            return await load(first)
        try:
            async with transaction():
                await IdempotencyKey.filter(scope=scope, key=key, created_at__lt=_expired_before()).delete()
                row = await IdempotencyKey.create(scope=scope, key=key, fingerprint=printed, created_at=clock.utcnow())
                made = await create()
                await IdempotencyKey.filter(id=row.id).update(result_type=result_type, result_id=made.id)
            return made
        except IntegrityError:
            continue
    raise RuntimeError(f"idempotency key {key!r} of {scope} is neither free nor readable")


async def _known(scope: str, key: str, printed: str) -> int | None:
    """The id the key's create made, if it is known and not expired."""
    row = await IdempotencyKey.get_or_none(scope=scope, key=key, created_at__gte=_expired_before())
    if row is None:
        return None
    if row.fingerprint != printed:
        raise ValidationFailed.one(FIELD, "was already used for a create with other input: send a new key "
                                          "for a new create, or the first input again to get its result")
    if row.result_id is None:  # only a write in progress has none, and it is not visible outside its transaction
        raise RuntimeError(f"idempotency key {key!r} of {scope} has no result")
    return row.result_id


async def prune() -> int:
    """Forget keys past the retention (the scheduler calls it with the events' prune)."""
    return await IdempotencyKey.filter(created_at__lt=_expired_before()).delete()
