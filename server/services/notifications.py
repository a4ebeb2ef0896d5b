"""In-app notifications: sent by rules (Notification, Control, calls and meetings), read by their recipient."""

from collections.abc import Iterable

from server import clock, events
from server.db import transaction
from server.errors import Forbidden, NotFound, ValidationFailed
from server.models import Notification, User
from server.services.access import ROLES, Actor
from server.services.paging import Slice, keyset

KINDS = ("notification", "control", "call", "meeting")


async def audience(user_ids: Iterable[int] = (), roles: Iterable[str] = ()) -> list[int]:
    """Active users named or holding one of `roles`, each once, in the order named (then by id)."""
    wanted = list(dict.fromkeys(user_ids))
    roles = list(roles)
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValidationFailed.one("roles", f"unknown roles {unknown}; one of {', '.join(ROLES)}")
    found = {u.id for u in await User.filter(id__in=wanted, active=True).only("id")} if wanted else set()
    ids = [i for i in wanted if i in found]
    if roles:
        for user in await User.filter(role__in=roles, active=True).order_by("id").only("id"):
            if user.id not in ids:
                ids.append(user.id)
    return ids


def payload(note: Notification) -> dict[str, object]:
    """What live subscribers receive: a small JSON view of the row."""
    return {
        "id": note.id, "kind": note.kind, "text": note.text, "sender_id": note.sender_id,
        "recipient_id": note.recipient_id, "element_type": note.element_type, "element_id": note.element_id,
        "created_at": note.created_at.isoformat(),
    }


async def notify(
    recipient_ids: Iterable[int],
    text: str,
    *,
    sender_id: int | None = None,
    kind: str = "notification",
    element_type: str | None = None,
    element_id: int | None = None,
    rule_run_id: int | None = None,
) -> list[Notification]:
    """One notification per recipient (each once), each announced to that recipient live."""
    assert kind in KINDS, kind
    sent = []
    async with transaction():  # joins the rule run's transaction when a rule notifies
        for recipient_id in dict.fromkeys(recipient_ids):
            note = await Notification.create(
                recipient_id=recipient_id, sender_id=sender_id, kind=kind, text=text,
                element_type=element_type, element_id=element_id, rule_run_id=rule_run_id,
            )
            await events.emit("notification", payload(note), element_type=element_type, element_id=element_id,
                              audience=[recipient_id])
            sent.append(note)
    return sent


def _require_self(actor: Actor | None, user_id: int) -> None:
    if actor is not None and actor.user_id != user_id:
        raise Forbidden("you may only read and mark your own notifications")


async def list_notifications(
    user_id: int, *, actor: Actor | None, unread_only: bool = False, first: int = 50, after: int | None = None
) -> Slice:
    """A user's notifications, newest first, `first` after the id `after`."""
    _require_self(actor, user_id)
    query = Notification.filter(recipient_id=user_id)
    if unread_only:
        query = query.filter(read=False)
    return await keyset(query, first=first, after=after)


async def unread_count(user_id: int, *, actor: Actor | None) -> int:
    _require_self(actor, user_id)
    return await Notification.filter(recipient_id=user_id, read=False).count()


async def mark_read(notification_ids: list[int], *, actor: Actor | None) -> list[Notification]:
    """Mark these notifications read; every one must belong to the actor (nothing changes otherwise)."""
    ids = list(dict.fromkeys(notification_ids))
    notes = {n.id: n for n in await Notification.filter(id__in=ids)}
    for ident in ids:
        if ident not in notes:
            raise NotFound("notification", ident)
        if actor is not None and notes[ident].recipient_id != actor.user_id:
            raise Forbidden("you may only mark your own notifications read")
    now = clock.utcnow()
    unread = [i for i in ids if not notes[i].read]
    if unread:
        await Notification.filter(id__in=unread, read=False).update(read=True, read_at=now)
    for ident in unread:
        notes[ident].read, notes[ident].read_at = True, now
    return [notes[i] for i in ids]


async def mark_all_read(user_id: int, *, actor: Actor | None) -> int:
    """Mark every unread notification of the user read; how many were unread."""
    _require_self(actor, user_id)
    return await Notification.filter(recipient_id=user_id, read=False).update(read=True, read_at=clock.utcnow())
