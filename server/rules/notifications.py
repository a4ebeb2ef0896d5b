"""Notifications as rules and services create them: recipients resolved from users and roles, one row each,
announced live to that recipient. The read side (lists, marking read) is services/notifications.py."""

from collections.abc import Iterable

from server import events
from server.actor import ROLES
from server.db import transaction
from server.errors import ValidationFailed
from server.models import Notification, User

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
