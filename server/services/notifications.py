"""In-app notifications: sent by rules (Notification, Control, calls and meetings), read by their recipient.

Sending is server/rules/notifications.py (the engine sends too), re-exported here for the faces.
"""

from server import clock
from server.errors import Forbidden, NotFound, ValidationFailed
from server.models import Notification
from server.rules.notifications import KINDS, audience, notify, payload
from server.services.access import Acting, Actor
from server.services.paging import MAX_PAGE, Slice, keyset

MARK_AT_ONCE = MAX_PAGE  # ids per markNotificationsRead

__all__ = [
    "KINDS", "audience", "list_notifications", "mark_all_read", "mark_read", "notify", "payload", "unread_count",
]


def _require_self(actor: Acting, user_id: int) -> None:
    if isinstance(actor, Actor) and actor.user_id != user_id:
        raise Forbidden("you may only read and mark your own notifications")


async def list_notifications(
    user_id: int, *, actor: Acting, unread_only: bool = False, first: int = 50, after: int | None = None
) -> Slice:
    """A user's notifications, newest first, `first` after the id `after`."""
    _require_self(actor, user_id)
    query = Notification.filter(recipient_id=user_id)
    if unread_only:
        query = query.filter(read=False)
    return await keyset(query, first=first, after=after)


async def unread_count(user_id: int, *, actor: Acting) -> int:
    _require_self(actor, user_id)
    return await Notification.filter(recipient_id=user_id, read=False).count()


async def mark_read(notification_ids: list[int], *, actor: Acting) -> list[Notification]:
    """Mark these notifications read; every one must belong to the actor (nothing changes otherwise)."""
    if len(notification_ids) > MARK_AT_ONCE:
        raise ValidationFailed.one("ids", f"at most {MARK_AT_ONCE} at once")
    ids = list(dict.fromkeys(notification_ids))
    notes = {n.id: n for n in await Notification.filter(id__in=ids)}
    for ident in ids:
        if ident not in notes:
            raise NotFound("notification", ident)
        if isinstance(actor, Actor) and notes[ident].recipient_id != actor.user_id:
            raise Forbidden("you may only mark your own notifications read")
    now = clock.utcnow()
    unread = [i for i in ids if not notes[i].read]
    if unread:
        await Notification.filter(id__in=unread, read=False).update(read=True, read_at=now)
    for ident in unread:
        notes[ident].read, notes[ident].read_at = True, now
    return [notes[i] for i in ids]


async def mark_all_read(user_id: int, *, actor: Acting) -> int:
    """Mark every unread notification of the user read; how many were unread."""
    _require_self(actor, user_id)
    return await Notification.filter(recipient_id=user_id, read=False).update(read=True, read_at=clock.utcnow())
