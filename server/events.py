"""Live events: written to the `event` table in the transaction of the change they describe.

The event id is the subscriber's cursor. Publishing to live subscribers happens after commit
(see `server/live.py`); a subscriber that missed events reads them back from the table.
"""

from typing import Any

from server.models import Event

KINDS = ("timeline", "feed", "notification", "rule_run", "element")


async def emit(
    kind: str,
    payload: dict[str, Any],
    *,
    element_type: str | None = None,
    element_id: int | None = None,
    responsible_id: int | None = None,
    audience: list[int] | None = None,
) -> Event:
    """Record an event in the current transaction. `audience`: user ids who may see it; None: the element decides."""
    assert kind in KINDS, kind
    return await Event.create(
        kind=kind, payload=payload, element_type=element_type, element_id=element_id,
        responsible_id=responsible_id, audience=audience,
    )
