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
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

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


# The columns an event is written with, in one multi-row INSERT per transaction.
_COLUMNS = ("kind", "element_type", "element_id", "responsible_id", "audience", "payload", "created_at")
_ROWS_PER_INSERT = 500  # 7 parameters a row, well under SQLite's 32,766


@dataclass(frozen=True)
class Owner:
    """An element's id and responsible, when only those were read (with a rule run, say)."""

    id: int
    responsible_id: int | None


def owner_known(element_type: str, element: Any) -> None:
    """The element (a loaded lead or deal) is at hand in this transaction: its events take their owner from
    it when they are written, instead of reading it again."""
    if db.in_unit():
        db.unit_memo("event_owners")[(element_type, element.id)] = element


async def _write(records: list[dict[str, Any]]) -> None:
    await _fill_responsible(records)
    rows = [Event(**record) for record in records]
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        await _insert(rows[start:start + _ROWS_PER_INSERT])
    publish = publisher
    if publish is not None:
        db.after_commit(lambda: publish(rows))


async def _insert(rows: list[Event]) -> None:
    """One statement for the batch. SQLite: ids follow the table's AUTOINCREMENT counter, which this
    transaction alone may move (BEGIN IMMEDIATE), and each position is its id. PostgreSQL: ids from the
    sequence, positions left to the hub's sequencer."""
    connection = Event._meta.db
    fields = Event._meta.fields_map
    values: list[Any] = []
    for row in rows:
        values += [fields[name].to_db_value(getattr(row, name), row) for name in _COLUMNS]
    columns = ", ".join(f'"{name}"' for name in _COLUMNS)
    width = len(_COLUMNS)
    if connection.capabilities.dialect == "postgres":
        tuples = ", ".join(
            "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")" for i in range(len(rows)))
        returned = await connection.execute_query_dict(
            f'INSERT INTO "event" ({columns}) VALUES {tuples} RETURNING "id"', values)
        for row, found in zip(rows, sorted(r["id"] for r in returned)):
            row.id = found
    else:
        tuples = ", ".join(f"({i + 1}, " + ", ".join("?" * width) + ")" for i in range(len(rows)))
        picked = ", ".join(f"v.column{j + 2}" for j in range(width))
        returned = await connection.execute_query_dict(
            "WITH base(n) AS MATERIALIZED "
            "(SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'event'), 0)) "
            f'INSERT INTO "event" ("id", "position", {columns}) '
            f"SELECT base.n + v.column1, base.n + v.column1, {picked} FROM base, (VALUES {tuples}) AS v "
            'ORDER BY v.column1 RETURNING "id"', values)
        for row, found in zip(rows, sorted(r["id"] for r in returned)):
            row.id = row.position = found
    for row in rows:
        row._saved_in_db = True


async def _fill_responsible(records: list[dict[str, Any]]) -> None:
    """Who may see an element event is decided by the element's responsible at the time of the event: taken
    from the element when this transaction has it loaded (`owner_known`), else read."""
    at_hand: dict[tuple[str, int], Any] = db.unit_memo("event_owners") if db.in_unit() else {}
    wanted: dict[str, set[int]] = defaultdict(set)
    for record in records:
        key = (record["element_type"], record["element_id"])
        if record["element_type"] and record["element_id"] and record["responsible_id"] is None \
                and key not in at_hand:
            wanted[record["element_type"]].add(record["element_id"])
    found: dict[tuple[str, int], int | None] = {key: element.responsible_id for key, element in at_hand.items()}
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
