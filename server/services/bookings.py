"""Resources, services and bookings as people use them (GraphQL, admin): the same rules as the Book a resource
action (rules/bookings.py), on the element's timeline and the "resource booked" event for triggers."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tortoise.exceptions import IntegrityError

from server.db import transaction
from server.errors import FieldError, Forbidden, NotFound, ValidationFailed
from server.kinds import BookingStatus, ElementType, ResourceKind, Role
from server.models import Booking, Resource, Service, User, model_for
from server.rules import bookings as core
from server.rules import elements, engine
from server.rules.bookings import BOOKING_FIELD_TYPE, MAX_RESOURCES, BookingConflict, describe
from server.rules.triggering import Event, Occurrence
from server.rules.triggers.base import RESOURCE_BOOKED
from server.services.access import Acting, Actor, element_scope, require_element
from server.services.calendar import BookedSlot
from server.services.elements import require_visible

__all__ = [
    "BOOKING_FIELD_TYPE", "MAX_RESOURCES", "BookingConflict", "BookingInput", "ResourceInput", "ServiceInput", "book",
    "booking_fields", "cancel_booking", "create_resource", "create_service", "describe", "element_bookings",
    "get_resource", "get_service", "list_resources", "list_services", "resource_bookings", "update_resource",
    "update_service", "week",
]

MAX_RANGE = timedelta(days=62)  # bookings of a resource asked for at once
NAME_MAX = 200


def require_manager(actor: Acting) -> None:
    if isinstance(actor, Actor) and actor.role not in (Role.admin, Role.manager):
        raise Forbidden("only admins and managers may change resources and services")


# ---------------------------------------------------------------- resources and services


@dataclass
class ResourceInput:
    """A resource as a client submits it; fields left None keep their value on update."""

    name: str | None = None
    kind: str | None = None
    user_id: int | None = None
    active: bool | None = None


@dataclass
class ServiceInput:
    name: str | None = None
    duration_minutes: int | None = None


def _name(value: str | None) -> str:
    name = (value or "").strip()
    if not name:
        raise ValidationFailed.one("name", "give it a name")
    if len(name) > NAME_MAX:
        raise ValidationFailed.one("name", f"must be at most {NAME_MAX} characters")
    return name


async def _resource_values(data: ResourceInput, current: Resource | None) -> dict[str, object]:
    errors: list[FieldError] = []
    name = data.name if data.name is not None else (current.name if current else None)
    try:
        name = _name(name)
    except ValidationFailed as exc:
        errors += exc.errors
    kind = data.kind if data.kind is not None else (current.kind if current else None)
    if kind not in tuple(ResourceKind):
        errors.append(FieldError("kind", "must be employee or thing"))
    user_id = data.user_id if data.user_id is not None else (current.user_id if current else None)
    if kind == ResourceKind.thing:
        user_id = None
    elif kind == ResourceKind.employee:
        if user_id is None:
            errors.append(FieldError("user_id", "an employee resource names the user it books"))
        elif not await User.exists(id=user_id, active=True):
            errors.append(FieldError("user_id", f"there is no active user {user_id}"))
    if errors:
        raise ValidationFailed(errors)
    values: dict[str, object] = {"name": name, "kind": kind, "user_id": user_id}
    if data.active is not None:
        values["active"] = data.active
    return values


async def _saved_resource(resource: Resource) -> Resource:
    try:
        await resource.save()
    except IntegrityError:
        raise ValidationFailed.one("name", f"there is a resource named {resource.name!r} already") from None
    return resource


async def create_resource(data: ResourceInput, *, actor: Acting) -> Resource:
    require_manager(actor)
    return await _saved_resource(Resource(**await _resource_values(data, None)))


async def update_resource(resource_id: int, data: ResourceInput, *, actor: Acting) -> Resource:
    require_manager(actor)
    resource = await get_resource(resource_id)
    for name, value in (await _resource_values(data, resource)).items():
        setattr(resource, name, value)
    return await _saved_resource(resource)


async def get_resource(resource_id: int) -> Resource:
    resource = await Resource.get_or_none(id=resource_id)
    if resource is None:
        raise NotFound("resource", resource_id)
    return resource


async def list_resources(*, include_inactive: bool = False) -> list[Resource]:
    query = Resource.all() if include_inactive else Resource.filter(active=True)
    return await query.order_by("name", "id")


def _duration(value: int | None) -> int:
    if value is None or not 1 <= value <= core.MAX_DURATION_MINUTES:
        raise ValidationFailed.one("duration_minutes", f"must be 1 to {core.MAX_DURATION_MINUTES} minutes")
    return value


async def _saved_service(service: Service) -> Service:
    try:
        await service.save()
    except IntegrityError:
        raise ValidationFailed.one("name", f"there is a service named {service.name!r} already") from None
    return service


async def create_service(data: ServiceInput, *, actor: Acting) -> Service:
    require_manager(actor)
    minutes = 60 if data.duration_minutes is None else data.duration_minutes
    errors: list[FieldError] = []
    for check in (lambda: _name(data.name), lambda: _duration(minutes)):
        try:
            check()
        except ValidationFailed as exc:
            errors += exc.errors
    if errors:
        raise ValidationFailed(errors)
    return await _saved_service(Service(name=_name(data.name), duration_minutes=minutes))


async def update_service(service_id: int, data: ServiceInput, *, actor: Acting) -> Service:
    require_manager(actor)
    service = await get_service(service_id)
    if data.name is not None:
        service.name = _name(data.name)
    if data.duration_minutes is not None:
        service.duration_minutes = _duration(data.duration_minutes)
    return await _saved_service(service)


async def get_service(service_id: int) -> Service:
    service = await Service.get_or_none(id=service_id)
    if service is None:
        raise NotFound("service", service_id)
    return service


async def list_services() -> list[Service]:
    return await Service.all().order_by("name", "id")


async def booking_fields(entity_type: str) -> dict[str, str]:
    """code -> name of the booking fields of leads or deals."""
    if entity_type not in tuple(ElementType):
        raise ValidationFailed.one("element_type", "must be lead or deal")
    return await core.booking_fields(entity_type)


# ---------------------------------------------------------------- booking


@dataclass
class BookingInput:
    """A booking a person makes: the element and its booking field, the resources, the slot. Without `end_at`
    the booking lasts the service's duration (or `duration_minutes`)."""

    element_type: str
    element_id: int
    field: str
    resource_ids: Sequence[int]
    start_at: datetime | None
    end_at: datetime | None = None
    service_id: int | None = None
    duration_minutes: int | None = None


async def book(data: BookingInput, *, actor: Acting) -> list[Booking]:
    """Book every resource for the slot, or none: BookingConflict names the booking in the way."""
    if data.element_type not in tuple(ElementType):
        raise ValidationFailed.one("element_type", "must be lead or deal")
    await core.check_field(data.element_type, data.field)
    resources = await core.active_resources(data.resource_ids, name="resource_ids")
    service = await core.service_or_none(data.service_id, name="service_id")
    end_at = data.end_at
    if end_at is None and data.start_at is not None:
        if data.duration_minutes is not None:
            end_at = data.start_at + timedelta(minutes=_duration(data.duration_minutes))
        elif service is not None:
            end_at = data.start_at + timedelta(minutes=service.duration_minutes)
        else:
            raise ValidationFailed.one("end_at", "give an end, a duration or a service with a duration")
    slot = core.check_slot(data.start_at, end_at)
    async with transaction():
        element = await elements.load(data.element_type, data.element_id, lock=True)
        require_element(actor, element)
        made = await core.book(resources, slot, element_type=data.element_type, element_id=element.id,
                               field=data.field, service=service, created_by_id=actor.user_id)
        names = {r.id: r.name for r in resources}
        await elements.add_timeline_entry(data.element_type, element.id, "history",
                                          core.booked_text(made, names, service), author_id=actor.user_id)
        await engine.fire_triggers(Occurrence(Event(RESOURCE_BOOKED, core.booked_event(made, names, service)),
                                              element_type=data.element_type, element_id=element.id))
    return made


async def cancel_booking(booking_id: int, *, actor: Acting) -> Booking:
    """Cancel one booking; its slot is free again. Cancelling a cancelled booking changes nothing."""
    async with transaction():
        booking = await Booking.get_or_none(id=booking_id)
        if booking is None:
            raise NotFound("booking", booking_id)
        element = await model_for(booking.element_type).filter(id=booking.element_id).select_for_update().first()
        if element is not None:
            require_element(actor, element)
        elif isinstance(actor, Actor) and not actor.sees_all_elements:
            raise Forbidden("you may only see and change leads and deals you are responsible for")
        if await core.cancel_one(booking) and element is not None:
            names = await core.resource_names([booking])
            await elements.add_timeline_entry(booking.element_type, booking.element_id, "history",
                                              core.cancelled_text([booking], names), author_id=actor.user_id)
    return booking


async def resource_bookings(resource_id: int, start: datetime, end: datetime, *, actor: Acting,
                            include_cancelled: bool = False) -> list[Booking]:
    """The bookings of a resource that share a moment with [start, end): anyone signed in may see when a
    resource is taken (they need it to book); which element a booking is for is the faces' to show or hide."""
    await get_resource(resource_id)
    if end <= start:
        raise ValidationFailed.one("to", "must be after from")
    if end - start > MAX_RANGE:
        raise ValidationFailed.one("to", f"ask for at most {MAX_RANGE.days} days at once")
    query = Booking.filter(resource_id=resource_id, start_at__lt=end, end_at__gt=start)
    if not include_cancelled:
        query = query.filter(status=BookingStatus.active)
    return await query.order_by("start_at", "id")


async def element_bookings(element_type: str, element_id: int, *, actor: Acting,
                           field: str | None = None) -> list[Booking]:
    """The element's bookings (active and cancelled), newest slot last; of one booking field if given."""
    await require_visible(actor, element_type, element_id)
    query = Booking.filter(element_type=element_type, element_id=element_id)
    if field is not None:
        query = query.filter(field=field)
    return await query.order_by("start_at", "id").limit(500)


async def user_bookings(user_id: int, since: datetime) -> list[tuple[Booking, Resource]]:
    """The bookings of the user's employee resources ending after `since`, cancelled ones too (a calendar
    client removes an event it sees as cancelled)."""
    resources = {r.id: r for r in await Resource.filter(user_id=user_id, kind=ResourceKind.employee)}
    if not resources:
        return []
    rows = await Booking.filter(resource_id__in=list(resources), end_at__gte=since).order_by("start_at", "id")
    return [(b, resources[b.resource_id]) for b in rows]


async def can_see_booking_element(actor: Acting, booking: Booking) -> bool:
    try:
        await require_visible(actor, booking.element_type, booking.element_id)
    except (Forbidden, NotFound):
        return False
    return True


async def feed_slots(booked: list[tuple[Booking, Resource]]) -> list[BookedSlot]:
    """Bookings for the calendar feed, each with its service and "Deal: <title>" of its element."""
    services = {s.id: s for s in await Service.filter(id__in={b.service_id for b, _ in booked if b.service_id})}
    titles: dict[tuple[str, int], str] = {}
    for element_type in {b.element_type for b, _ in booked}:
        ids = [b.element_id for b, _ in booked if b.element_type == element_type]
        for element in await model_for(element_type).filter(id__in=ids).only("id", "title"):
            titles[(element_type, element.id)] = f"{element_type.capitalize()}: {element.title}"
    return [BookedSlot(b, r, services.get(b.service_id) if b.service_id else None,
                       titles.get((b.element_type, b.element_id))) for b, r in booked]


# ---------------------------------------------------------------- a resource's week, for the admin


@dataclass(frozen=True)
class WeekBlock:
    """A booking as one day's column shows it: its part of that day (UTC), and the element if the viewer may see it."""

    booking: Booking
    starts: datetime
    ends: datetime
    title: str | None  # None: the viewer may not see the element (the slot is shown as taken)
    service: str | None


@dataclass(frozen=True)
class WeekDay:
    day: date
    blocks: list[WeekBlock]


@dataclass(frozen=True)
class Week:
    resource: Resource
    start: date  # a Monday
    days: list[WeekDay]

    @property
    def previous(self) -> date:
        return self.start - timedelta(days=7)

    @property
    def next(self) -> date:
        return self.start + timedelta(days=7)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def week(resource_id: int, day: date, *, actor: Acting) -> Week:
    """The active bookings of a resource in the week (Monday to Sunday, UTC) that holds `day`, per day."""
    resource = await get_resource(resource_id)
    start = monday_of(day)
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    rows = await resource_bookings(resource_id, first, first + timedelta(days=7), actor=actor)
    services = {s.id: s.name for s in await Service.filter(id__in={b.service_id for b in rows if b.service_id})}
    titles: dict[tuple[str, int], str] = {}
    for element_type in {b.element_type for b in rows}:
        ids = [b.element_id for b in rows if b.element_type == element_type]
        for element in await model_for(element_type).filter(id__in=ids, **element_scope(actor)).only("id", "title"):
            titles[(element_type, element.id)] = element.title
    days = []
    for offset in range(7):
        begin = first + timedelta(days=offset)
        end = begin + timedelta(days=1)
        blocks = [WeekBlock(b, max(b.start_at, begin), min(b.end_at, end), titles.get((b.element_type, b.element_id)),
                            services.get(b.service_id) if b.service_id else None)
                  for b in rows if b.start_at < end and b.end_at > begin]
        days.append(WeekDay(begin.date(), blocks))
    return Week(resource, start, days)
