"""What rules create for people, as the signed-in user sees it: activities (with completion and the
calendar feed URL), notifications (with mark-as-read) and the activity stream (feed posts)."""

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from server import models
from server.schema.context import actor_of
from server.schema.errors import ForbiddenError, NotFoundError, ValidationError, result_of
from server.schema.ids import gid, opt_gid, to_int
from server.schema.relay import Connection, connection, decode
from server.services import activities as activity_service
from server.services import feed as feed_service
from server.services import notifications as notification_service
from server.services.paging import MAX_PAGE, page_size


@strawberry.type
class Activity:
    """A call, meeting, activity or to-do of one user; it is in their calendar feed."""

    id: strawberry.ID
    kind: str
    subject: str
    description: str
    start_at: datetime
    end_at: datetime
    important: bool
    reminder_minutes: int | None
    responsible_id: strawberry.ID
    element_type: str | None
    element_id: strawberry.ID | None
    auto_complete: bool = strawberry.field(description="Completed when its element changes stage.")
    completed: bool
    completed_at: datetime | None
    rule_run_id: strawberry.ID | None

    @classmethod
    def of(cls, row: models.Activity) -> "Activity":
        return cls(id=gid(row.id), kind=row.kind, subject=row.subject, description=row.description,
                   start_at=row.start_at, end_at=row.end_at, important=row.important,
                   reminder_minutes=row.reminder_minutes, responsible_id=gid(row.responsible_id),
                   element_type=row.element_type, element_id=opt_gid(row.element_id),
                   auto_complete=row.auto_complete, completed=row.completed, completed_at=row.completed_at,
                   rule_run_id=opt_gid(row.rule_run_id))


@strawberry.type
class Notification:
    id: strawberry.ID
    kind: str = strawberry.field(description="notification | control | call | meeting")
    text: str
    sender_id: strawberry.ID | None
    read: bool
    read_at: datetime | None
    element_type: str | None
    element_id: strawberry.ID | None
    created_at: datetime

    @classmethod
    def of(cls, row: models.Notification) -> "Notification":
        return cls(id=gid(row.id), kind=row.kind, text=row.text, sender_id=opt_gid(row.sender_id), read=row.read,
                   read_at=row.read_at, element_type=row.element_type, element_id=opt_gid(row.element_id),
                   created_at=row.created_at)


@strawberry.type
class FeedPost:
    id: strawberry.ID
    title: str
    body: str
    author_id: strawberry.ID | None
    to_everyone: bool
    element_type: str | None
    element_id: strawberry.ID | None
    created_at: datetime

    @classmethod
    def of(cls, row: models.FeedPost) -> "FeedPost":
        return cls(id=gid(row.id), title=row.title, body=row.body, author_id=opt_gid(row.author_id),
                   to_everyone=row.to_everyone, element_type=row.element_type, element_id=opt_gid(row.element_id),
                   created_at=row.created_at)


@strawberry.type
class CalendarFeed:
    url: str = strawberry.field(description="Secret: whoever has it can read your calendar. Rotate it if it leaks.")


@strawberry.type
class MarkedRead:
    notifications: list[Notification]
    unread_count: int


ActivityResult = Annotated[Activity | ValidationError | NotFoundError | ForbiddenError, strawberry.union("ActivityCompletion")]
MarkedReadResult = Annotated[
    MarkedRead | ValidationError | NotFoundError | ForbiddenError, strawberry.union("MarkedReadResult")
]
FeedPostResult = Annotated[FeedPost | ValidationError | ForbiddenError, strawberry.union("FeedPostResult")]


def _base_url(info: Info) -> str:
    from server.config import settings

    configured = settings().public_url
    if configured:
        return configured
    request = info.context.request
    return str(request.base_url) if request is not None else ""


@strawberry.type
class WorkQuery:
    @strawberry.field(description="Your notifications, newest first.")
    async def notifications(self, info: Info, first: int = 50, after: str | None = None,
                            unread_only: bool = False) -> Connection[Notification]:
        actor = actor_of(info)
        page = await notification_service.list_notifications(
            actor.user_id, actor=actor, unread_only=unread_only, first=first, after=decode(after))
        return connection(page, Notification.of, after=after)

    @strawberry.field
    async def unread_notification_count(self, info: Info) -> int:
        actor = actor_of(info)
        return await notification_service.unread_count(actor.user_id, actor=actor)

    @strawberry.field(description="Activities by start time: yours, or (managers and admins) another user's; "
                                  "the first `first` (up to 100): move `startFrom` on to read further.")
    async def activities(
        self, info: Info, user_id: strawberry.ID | None = None, start_from: datetime | None = None,
        start_to: datetime | None = None, include_completed: bool = True, first: int = MAX_PAGE,
    ) -> list[Activity]:
        actor = actor_of(info)
        rows = await activity_service.list_for_user(
            to_int(user_id, "user_id") if user_id is not None else actor.user_id, actor=actor,
            include_completed=include_completed, start_from=start_from, start_to=start_to, limit=page_size(first))
        return [Activity.of(a) for a in rows]

    @strawberry.field(description="The activities of a lead or deal by start time (the first `first`, up to 100).")
    async def element_activities(self, info: Info, element_type: str, element_id: strawberry.ID,
                                 first: int = MAX_PAGE) -> list[Activity]:
        rows = await activity_service.list_for_element(element_type, to_int(element_id, "element_id"),
                                                       actor=actor_of(info), limit=page_size(first))
        return [Activity.of(a) for a in rows]

    @strawberry.field(description="Your activity stream: posts to you, to everyone, or by you; newest first.")
    async def feed(self, info: Info, first: int = 50, after: str | None = None) -> Connection[FeedPost]:
        actor = actor_of(info)
        page = await feed_service.list_visible(actor.user_id, actor=actor, first=first, after=decode(after))
        return connection(page, FeedPost.of, after=after)

    @strawberry.field(description="The secret URL of your iCalendar feed (calls, meetings, activities).")
    async def calendar_feed(self, info: Info) -> CalendarFeed:
        actor = actor_of(info)
        return CalendarFeed(url=await activity_service.calendar_url(actor.user_id, actor=actor,
                                                                    base_url=_base_url(info)))


@strawberry.type
class WorkMutation:
    @strawberry.mutation(description="Mark your activity done; its calendar event updates.")
    async def complete_activity(self, info: Info, id: strawberry.ID) -> ActivityResult:
        actor = actor_of(info)
        return await result_of(lambda: activity_service.complete_activity(to_int(id, "id"), actor=actor),
                               Activity.of)

    @strawberry.mutation(description="Mark these notifications (yours) read; none is changed if one is not yours.")
    async def mark_notifications_read(self, info: Info, ids: list[strawberry.ID]) -> MarkedReadResult:
        actor = actor_of(info)

        async def mark() -> MarkedRead:
            notes = await notification_service.mark_read([to_int(i, "ids") for i in ids], actor=actor)
            count = await notification_service.unread_count(actor.user_id, actor=actor)
            return MarkedRead(notifications=[Notification.of(n) for n in notes], unread_count=count)

        return await result_of(mark)

    @strawberry.mutation(description="Mark all your notifications read; answers how many were unread.")
    async def mark_all_notifications_read(self, info: Info) -> int:
        actor = actor_of(info)
        return await notification_service.mark_all_read(actor.user_id, actor=actor)

    @strawberry.mutation(description="Post to the activity stream, to users and/or roles, or to everyone.")
    async def post_to_feed(
        self, info: Info, body: str, title: str = "", user_ids: list[strawberry.ID] | None = None,
        roles: list[str] | None = None, everyone: bool = False,
    ) -> FeedPostResult:
        actor = actor_of(info)
        result = await result_of(
            lambda: feed_service.create_post(actor, title=title, body=body,
                                             user_ids=[to_int(u, "user_ids") for u in user_ids or []],
                                             roles=roles or [], everyone=everyone),
            FeedPost.of,
        )
        assert not isinstance(result, NotFoundError)  # unknown or inactive recipients are left out, not "not found"
        return result

    @strawberry.mutation(description="A new secret calendar URL; the old one stops working.")
    async def rotate_calendar_feed(self, info: Info) -> CalendarFeed:
        actor = actor_of(info)
        await activity_service.rotate_calendar_token(actor.user_id, actor=actor)
        return CalendarFeed(url=await activity_service.calendar_url(actor.user_id, actor=actor,
                                                                    base_url=_base_url(info)))

