"""Live: the activity stream, rule run status changes, element changes. Each event carries a cursor;
pass it back as `after` on reconnect to receive what was missed first, then live events, none twice.
Which events a user may see is the hub's rule (`live.visible`, with their role as it is now); the
filters here are the subscriber's own.
"""

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from server import live
from server.errors import ValidationFailed
from server.schema.context import connection_of
from server.schema.ids import gid, opt_gid, opt_int
from server.schema.kinds import ElementType, RunStatus
from server.schema.messages import MessageEvent

ACTIVITY_KINDS = ("timeline", "feed", "notification", "message")
ELEMENT_KINDS = ("element", "message")  # a message of the element was written or changed status


def _after(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise ValidationFailed.one("after", "is not a cursor this API gave out")
    return int(value)


@strawberry.type
class ActivityEvent:
    """A timeline entry, feed post, notification or message (sent, received, or its delivery status changed).
    `data` is the entry as JSON (fields per kind)."""

    cursor: str
    kind: str
    element_type: str | None
    element_id: strawberry.ID | None
    created_at: datetime
    data: JSON

    @classmethod
    def of(cls, event: live.LiveEvent) -> "ActivityEvent":
        return cls(cursor=str(event.cursor), kind=event.kind, element_type=event.element_type,
                   element_id=opt_gid(event.element_id), created_at=event.created_at, data=JSON(event.payload))


def _element_type(event: live.LiveEvent) -> ElementType:
    assert event.element_type is not None  # rule run and element events always name their element
    return ElementType(event.element_type)


@strawberry.type
class RuleRunEvent:
    cursor: str
    run_id: strawberry.ID
    status: RunStatus
    rule_id: strawberry.ID
    rule_key: str
    title: str
    action_type: str
    stage_id: strawberry.ID | None
    element_type: ElementType
    element_id: strawberry.ID
    attempts: int
    reason: str | None
    error: str | None
    outputs: JSON | None
    created_at: datetime

    @classmethod
    def of(cls, event: live.LiveEvent) -> "RuleRunEvent":
        p = event.payload
        return cls(cursor=str(event.cursor), run_id=gid(p["id"]), status=RunStatus(p["status"]), rule_id=gid(p["rule_id"]),
                   rule_key=p["rule_key"], title=p["title"], action_type=p["action_type"],
                   stage_id=opt_gid(p.get("stage_id")), element_type=_element_type(event),
                   element_id=gid(event.element_id or 0), attempts=p.get("attempts", 0), reason=p.get("reason"),
                   error=p.get("error"), outputs=p.get("outputs"), created_at=event.created_at)


@strawberry.type
class ElementEvent:
    cursor: str
    change: str = strawberry.field(description="created | updated | moved | deleted | message")
    element_type: ElementType
    element_id: strawberry.ID
    title: str
    stage_id: strawberry.ID | None
    fields: list[str] = strawberry.field(description="The changed fields, for `updated`.")
    created_at: datetime
    message: MessageEvent | None = strawberry.field(
        description="For `message`: the message written or whose status changed (title and stage are empty).")

    @classmethod
    def of(cls, event: live.LiveEvent) -> "ElementEvent":
        p = event.payload
        change = "message" if event.kind == "message" else p["change"]
        return cls(cursor=str(event.cursor), change=change, element_type=_element_type(event),
                   element_id=gid(event.element_id or 0), title=p.get("title", ""), stage_id=opt_gid(p.get("stage_id")),
                   fields=list(p.get("fields") or []), created_at=event.created_at,
                   message=MessageEvent.of(p) if event.kind == "message" else None)


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Timeline entries, feed posts, notifications and messages you may see.")
    async def activity_stream(self, info: Info, after: str | None = None) -> AsyncGenerator[ActivityEvent, None]:
        connection = connection_of(info)
        async for event in live.stream(connection, lambda event: True, after=_after(after), kinds=ACTIVITY_KINDS):
            yield ActivityEvent.of(event)

    @strawberry.subscription(
        description="Rule run status changes, optionally of one element, stage or rule, or only some statuses."
    )
    async def rule_runs(
        self, info: Info, after: str | None = None, element_type: str | None = None,
        element_id: strawberry.ID | None = None, stage_id: strawberry.ID | None = None,
        rule_id: strawberry.ID | None = None, status: list[str] | None = None,
    ) -> AsyncGenerator[RuleRunEvent, None]:
        connection = connection_of(info)
        statuses = set(status or ())
        element, stage, rule = opt_int(element_id, "element_id"), opt_int(stage_id, "stage_id"), opt_int(rule_id, "rule_id")

        def accept(event: live.LiveEvent) -> bool:
            return (
                (element_type is None or event.element_type == element_type)
                and (element is None or event.element_id == element)
                and (stage is None or event.payload.get("stage_id") == stage)
                and (rule is None or event.payload.get("rule_id") == rule)
                and (not statuses or event.payload.get("status") in statuses)
            )

        async for event in live.stream(connection, accept, after=_after(after), kinds=("rule_run",)):
            yield RuleRunEvent.of(event)

    @strawberry.subscription(description="Leads and deals created, changed, moved or deleted, and their messages "
                                         "(written, or their delivery status changed).")
    async def element_changed(
        self, info: Info, after: str | None = None, element_type: str | None = None,
        element_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[ElementEvent, None]:
        connection = connection_of(info)
        element = opt_int(element_id, "element_id")

        def accept(event: live.LiveEvent) -> bool:
            return (
                event.element_type is not None  # a message of no element is not an element change
                and (element_type is None or event.element_type == element_type)
                and (element is None or event.element_id == element)
            )

        async for event in live.stream(connection, accept, after=_after(after), kinds=ELEMENT_KINDS):
            yield ElementEvent.of(event)
