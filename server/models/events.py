"""The event log behind subscriptions: every event has a cursor (its position), in commit order."""

from typing import Any

from tortoise import fields
from tortoise.models import Model


class Event(Model):
    """One live event. `audience` lists the user ids who may see it, or is null when the
    element decides (managers and admins, and the responsible of the element at the time).
    """

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=30)  # timeline | feed | notification | rule_run | element
    element_type = fields.CharField(max_length=10, null=True)
    element_id = fields.IntField(null=True)
    responsible_id = fields.IntField(null=True)
    audience: fields.JSONField[list[int] | None] = fields.JSONField(null=True)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)
    # The delivery order and the subscriber's cursor: given once the event's transaction has committed,
    # at insert on SQLite (writers take turns) and by the hub's sequencer on PostgreSQL (live.sequence).
    position = fields.BigIntField(null=True, unique=True)

    class Meta:
        table = "event"
