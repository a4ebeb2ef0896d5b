"""Live events: written to the `event` table as the last step of the transaction that made the change.

The event's `position` is the subscriber's cursor and follows commit order. On SQLite writers take
turns (BEGIN IMMEDIATE), so the position is the id, given at insert. On PostgreSQL writers take no
lock and leave the position empty: the hub numbers committed events as it finds them
(`live.sequence`), so a writer never waits on another writer's transaction and a transaction that
commits late is still delivered, after what was delivered before it. After commit the events go to whoever registered as the publisher: the live hub (`server/live.py`) does at
the start of every process that serves or runs rules, so this module knows nothing of subscribers.
"""

from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from tortoise.connection import get_connection
from tortoise.expressions import F

from server import clock, db
from server.config import settings
from server.models import Event, model_for

KINDS = ("timeline", "feed", "notification", "rule_run", "element", "access", "message")
ACCESS = "access"  # a token revoked, a user deactivated or given another role: read by the hub, seen by no one

Publisher = Callable[[list[Event]], Awaitable[None]]
publisher: Publisher | None = None  # told of each transaction's events after it commits; see set_publisher


def set_publisher(publish: Publisher | None) -> None:
    """Who tells live subscribers about committed events (`live.install_publisher`). None: nobody listens."""
    global publisher
    publisher = publish


async def emit(
    kind: str,
    payload: dict[str, Any],
    *,
    element_type: str | None = None,
    element_id: int | None = None,
    responsible_id: int | None = None,
    audience: list[int] | None = None,
) -> None:
    """Record an event with the current transaction (one is opened if there is none).

    `audience`: the user ids who may see it. None: whoever may see the element (its responsible,
    managers and admins), or everyone when there is no element.
    """
    assert kind in KINDS, kind
    record = {
        "kind": kind, "payload": payload, "element_type": element_type, "element_id": element_id,
        "responsible_id": responsible_id, "audience": audience,
    }
    if not db.in_unit():
        async with db.transaction():
            db.before_commit_batch("events", [record], _write)
        return
    db.before_commit_batch("events", [record], _write)


async def _write(records: list[dict[str, Any]]) -> None:
    await _fill_responsible(records)
    rows = [await Event.create(**record) for record in records]
    if get_connection("default").capabilities.dialect != "postgres":
        await Event.filter(id__in=[row.id for row in rows]).update(position=F("id"))
        for row in rows:
            row.position = row.id
    publish = publisher
    if publish is not None:
        db.after_commit(lambda: publish(rows))


async def _fill_responsible(records: list[dict[str, Any]]) -> None:
    """Who may see an element event is decided by the element's responsible at the time of the event."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for record in records:
        if record["element_type"] and record["element_id"] and record["responsible_id"] is None:
            wanted[record["element_type"]].add(record["element_id"])
    found: dict[tuple[str, int], int | None] = {}
    for element_type, ids in wanted.items():
        for element in await model_for(element_type).filter(id__in=list(ids)).only("id", "responsible_id"):
            found[(element_type, element.id)] = element.responsible_id
    for record in records:
        if record["responsible_id"] is None and record["element_type"]:
            record["responsible_id"] = found.get((record["element_type"], record["element_id"]))


async def prune() -> int:
    """Drop events past the retention (PIPEWRIGHT_EVENT_RETENTION_H): a subscriber can resume from a
    cursor younger than that. Runs rarely (it scans the table by time)."""
    cutoff = clock.utcnow() - timedelta(hours=settings().event_retention_h)
    return await Event.filter(created_at__lt=cutoff).delete()
