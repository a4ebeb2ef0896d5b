"""Activities (calls, meetings, to-dos): lists per user and per element, completion, and the calendar feed."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server import clock
from server.errors import Forbidden, NotFound, ValidationFailed
from server.models import ELEMENT_MODELS, Activity, User, model_for
from server.services import bookings, calendar, elements
from server.services.access import Acting, Actor, require_element

# The feed lists activities from this far back (and everything after).
CALENDAR_HISTORY = timedelta(days=180)


def _require_user_or_all(actor: Acting, user_id: int) -> None:
    if isinstance(actor, Actor) and actor.user_id != user_id and not actor.sees_all_elements:
        raise Forbidden("you may only see your own activities")


async def list_for_user(
    user_id: int, *, actor: Acting, include_completed: bool = True,
    start_from: datetime | None = None, start_to: datetime | None = None, limit: int = 200, offset: int = 0,
) -> list[Activity]:
    """A user's activities by start time. Users see their own; managers and admins anyone's."""
    _require_user_or_all(actor, user_id)
    query = Activity.filter(responsible_id=user_id)
    if not include_completed:
        query = query.filter(completed=False)
    if start_from is not None:
        query = query.filter(start_at__gte=start_from)
    if start_to is not None:
        query = query.filter(start_at__lt=start_to)
    return await query.order_by("start_at", "id").offset(offset).limit(limit)


async def list_for_element(element_type: str, element_id: int, *, actor: Acting, limit: int = 200) -> list[Activity]:
    """The activities of a lead or deal (kept after it is deleted; then only managers and admins see them)."""
    element = await model_for(element_type).get_or_none(id=element_id)
    if element is not None:
        require_element(actor, element)
    elif isinstance(actor, Actor) and not actor.sees_all_elements:
        raise NotFound(element_type, element_id)
    return await Activity.filter(element_type=element_type, element_id=element_id).order_by("start_at", "id").limit(limit)


async def complete_activity(activity_id: int, *, actor: Acting) -> Activity:
    """The responsible marks their activity done; its calendar event updates (SEQUENCE moves)."""
    activity = await Activity.get_or_none(id=activity_id)
    if activity is None:
        raise NotFound("activity", activity_id)
    if isinstance(actor, Actor) and actor.user_id != activity.responsible_id:
        raise Forbidden("you may only complete your own activities")
    if activity.completed:
        raise ValidationFailed.one("activity_id", "the activity is already completed")
    activity.completed = True
    activity.completed_at = clock.utcnow()
    activity.sequence += 1
    await activity.save(update_fields=["completed", "completed_at", "sequence", "updated_at"])
    return activity


# ---------------------------------------------------------------- my work

WORK_KINDS = ("task", "call", "meeting", "activity", "todo")
WORK_GROUPS = ("overdue", "today", "later")


@dataclass(frozen=True)
class WorkItem:
    """One open piece of a user's work: a task (due at its deadline) or an activity (due at its start)."""

    kind: str  # task, or an activity's kind
    id: int
    title: str
    due_at: datetime | None
    element_type: str | None
    element_id: int | None
    important: bool = False


def zone_named(name: str | None) -> ZoneInfo:
    """A user's time zone; UTC for an empty or unknown name."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def due_group(due_at: datetime | None, now: datetime, zone: ZoneInfo) -> str:
    """overdue (before now), today (before midnight in `zone`), or later (another day, or no due time)."""
    if due_at is None:
        return "later"
    due = due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC)
    if due < now:
        return "overdue"
    midnight = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), datetime.min.time(), zone)
    return "today" if due < midnight else "later"


async def open_work(
    user_id: int, *, actor: Acting, zone: str | None, kind: str | None = None, limit: int = 200
) -> dict[str, list[WorkItem]]:
    """A user's open tasks and uncompleted activities in WORK_GROUPS, "today" meaning the day in `zone`,
    each group by due time. Users see their own; managers and admins anyone's."""
    if kind is not None and kind not in WORK_KINDS:
        raise ValidationFailed.one("kind", f"must be one of {', '.join(WORK_KINDS)}")
    _require_user_or_all(actor, user_id)
    items: list[WorkItem] = []
    if kind in (None, "task"):
        items += [WorkItem("task", t.id, t.title, t.deadline, t.element_type, t.element_id, t.priority == "high")
                  for t in await elements.open_tasks_for_user(user_id, actor=actor, limit=limit)]
    if kind != "task":
        query = Activity.filter(responsible_id=user_id, completed=False)
        if kind is not None:
            query = query.filter(kind=kind)
        items += [WorkItem(a.kind, a.id, a.subject, a.start_at, a.element_type, a.element_id, a.important)
                  for a in await query.order_by("start_at", "id").limit(limit)]
    now, where = clock.utcnow(), zone_named(zone)
    groups: dict[str, list[WorkItem]] = {group: [] for group in WORK_GROUPS}
    for item in sorted(items, key=lambda i: (i.due_at is None, i.due_at or now, i.kind, i.id)):
        groups[due_group(item.due_at, now, where)].append(item)
    return groups


# ---------------------------------------------------------------- the calendar feed


def _require_self_or_admin(actor: Acting, user_id: int) -> None:
    if isinstance(actor, Actor) and actor.user_id != user_id and not actor.is_admin:
        raise Forbidden("you may only see and change your own calendar link")


async def _user(user_id: int) -> User:
    user = await User.get_or_none(id=user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


async def calendar_url_token(user_id: int, *, actor: Acting) -> str:
    """The secret of the user's feed URL, created on first use."""
    _require_self_or_admin(actor, user_id)
    user = await _user(user_id)
    if user.calendar_token:
        return user.calendar_token
    # Conditional: two first calls at once agree on one token.
    await User.filter(id=user_id, calendar_token=None).update(calendar_token=secrets.token_urlsafe(32))
    return (await _user(user_id)).calendar_token or ""


async def rotate_calendar_token(user_id: int, *, actor: Acting) -> str:
    """A new secret: the old feed URL stops working (a leaked link is revoked this way)."""
    _require_self_or_admin(actor, user_id)
    await _user(user_id)
    token = secrets.token_urlsafe(32)
    await User.filter(id=user_id).update(calendar_token=token)
    return token


def calendar_path(token: str) -> str:
    """The feed's path on the server: prefix it with the public base URL."""
    return f"/calendar/{token}.ics"


async def calendar_url(user_id: int, *, actor: Acting, base_url: str = "") -> str:
    return base_url.rstrip("/") + calendar_path(await calendar_url_token(user_id, actor=actor))


async def calendar_feed(token: str) -> str:
    """The iCalendar text of the user whose feed secret this is; NotFound for any other token."""
    user = await User.get_or_none(calendar_token=token, active=True) if token else None
    if user is None:
        raise NotFound("calendar", "feed")
    activities = await Activity.filter(
        responsible_id=user.id, start_at__gte=clock.utcnow() - CALENDAR_HISTORY
    ).order_by("start_at", "id")
    booked = await bookings.user_bookings(user.id, clock.utcnow() - CALENDAR_HISTORY)
    return calendar.render(user, activities, about=await _about(activities),
                           bookings=await bookings.feed_slots(booked))


async def _about(activities: list[Activity]) -> dict[int, str]:
    """activity id → "Deal: <title>" for the elements that still exist."""
    wanted: dict[str, set[int]] = {}
    for activity in activities:
        if activity.element_type in ELEMENT_MODELS and activity.element_id is not None:
            wanted.setdefault(activity.element_type, set()).add(activity.element_id)
    titles: dict[tuple[str, int], str] = {}
    for element_type, ids in wanted.items():
        for element in await model_for(element_type).filter(id__in=list(ids)).only("id", "title"):
            titles[(element_type, element.id)] = f"{element_type.capitalize()}: {element.title}"
    return {
        a.id: titles[(a.element_type, a.element_id)]
        for a in activities
        if a.element_type and a.element_id is not None and (a.element_type, a.element_id) in titles
    }
