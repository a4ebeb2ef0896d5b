"""Booking resources for an element, with the one rule both faces keep: two active bookings of one resource never
overlap, and a booking ends after it starts. The Book a resource action and the bookings service both come here.

Who keeps bookings apart is the database: on PostgreSQL the exclusion constraint of migration 0008 refuses the
second of two overlapping inserts (the insert runs in a savepoint, so the conflict can be named afterwards); on
SQLite every write transaction begins with BEGIN IMMEDIATE (server/sqlite_immediate.py), so the overlap check
below and the insert run with no other writer in between. Slots are half-open: 10:00-11:00 and 11:00-12:00 fit.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server import clock
from server.errors import FieldError, ValidationFailed
from server.kinds import BookingStatus
from server.models import Booking, CustomField, Resource, Service

BOOKING_FIELD_TYPE = "booking"
MAX_RESOURCES = 20  # resources one booking call names
MAX_DURATION_MINUTES = 7 * 24 * 60


class BookingConflict(ValidationFailed):
    """The slot is taken: `conflict` is the active booking of the resource that overlaps it."""

    def __init__(self, conflict: Booking, resource: Resource, field: str = "start_at") -> None:
        self.conflict = conflict
        self.resource = resource
        super().__init__([FieldError(field, f"{resource.name} is already booked then: {describe(conflict, resource)}")])


@dataclass(frozen=True)
class Slot:
    start_at: datetime
    end_at: datetime


def describe(booking: Booking, resource: Resource | None = None) -> str:
    """booking 12 (Room 1, 2026-12-03 10:00-11:00 UTC, for deal 7): how a refusal names a booking."""
    name = resource.name if resource is not None else f"resource {booking.resource_id}"
    start, end = booking.start_at.astimezone(UTC), booking.end_at.astimezone(UTC)
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
    return (f"booking {booking.id} ({name}, {start:%Y-%m-%d %H:%M}-{until} UTC, "
            f"for {booking.element_type} {booking.element_id})")


def check_slot(start_at: datetime | None, end_at: datetime | None) -> Slot:
    """A slot with a time zone that ends after it starts, or the field at fault."""
    if start_at is None:
        raise ValidationFailed.one("start_at", "is required")
    if end_at is None:
        raise ValidationFailed.one("end_at", "is required")
    if start_at.tzinfo is None or end_at.tzinfo is None:
        raise ValidationFailed.one("start_at" if start_at.tzinfo is None else "end_at",
                                   "must carry a time zone (2026-12-03T10:00:00+01:00)")
    if end_at <= start_at:
        raise ValidationFailed.one("end_at", f"must be after the start ({start_at.isoformat()}), "
                                             f"not {end_at.isoformat()}")
    if (end_at - start_at).total_seconds() > MAX_DURATION_MINUTES * 60:
        raise ValidationFailed.one("end_at", "a booking lasts at most 7 days")
    return Slot(start_at.astimezone(UTC), end_at.astimezone(UTC))


async def booking_fields(entity_type: str) -> dict[str, str]:
    """code -> name of the booking fields of a lead or deal."""
    return dict(await CustomField.filter(entity_type=entity_type, type=BOOKING_FIELD_TYPE).values_list("code", "name"))


async def check_field(entity_type: str, field: str, *, name: str = "field") -> None:
    fields = await booking_fields(entity_type)
    if field not in fields:
        known = ", ".join(sorted(fields)) or "none"
        raise ValidationFailed.one(name, f"'{field}' is not a booking field of a {entity_type} (booking fields: {known})")


async def active_resources(resource_ids: Sequence[int], *, name: str = "resources") -> list[Resource]:
    """The named resources, each once, in the order named: every one must exist and be active."""
    wanted = list(dict.fromkeys(resource_ids))
    if not wanted:
        raise ValidationFailed.one(name, "name at least one resource to book")
    if len(wanted) > MAX_RESOURCES:
        raise ValidationFailed.one(name, f"at most {MAX_RESOURCES} resources at once")
    found = {r.id: r for r in await Resource.filter(id__in=wanted)}
    problems = [FieldError(f"{name}.{i}", f"resource {ident} does not exist" if ident not in found else
                           f"{found[ident].name} is not active") for i, ident in enumerate(wanted)
                if ident not in found or not found[ident].active]
    if problems:
        raise ValidationFailed(problems)
    return [found[ident] for ident in wanted]


async def service_or_none(service_id: int | None, *, name: str = "service") -> Service | None:
    if service_id is None:
        return None
    service = await Service.get_or_none(id=service_id)
    if service is None:
        raise ValidationFailed.one(name, f"service {service_id} does not exist")
    return service


async def overlapping(resource_id: int, slot: Slot) -> Booking | None:
    """The first active booking of the resource that shares a moment with the slot (half-open ranges)."""
    return await Booking.filter(resource_id=resource_id, status=BookingStatus.active, start_at__lt=slot.end_at,
                                end_at__gt=slot.start_at).order_by("start_at", "id").first()


async def book(resources: Sequence[Resource], slot: Slot, *, element_type: str, element_id: int, field: str,
               service: Service | None, rule_run_id: int | None = None,
               created_by_id: int | None = None) -> list[Booking]:
    """Book every resource for the slot, or none (BookingConflict names the first taken slot). Call inside the
    transaction of the change; a rule run that booked already gets its bookings back instead of new ones."""
    if rule_run_id is not None:
        earlier = await Booking.filter(rule_run_id=rule_run_id).order_by("id")
        if earlier:
            return earlier
    made = []
    for resource in resources:
        conflict = await overlapping(resource.id, slot)
        if conflict is not None:
            raise BookingConflict(conflict, resource)
        try:
            async with in_transaction():  # a savepoint: a refused insert leaves the transaction usable
                booking = await Booking.create(
                    resource_id=resource.id, service_id=service.id if service else None, element_type=element_type,
                    element_id=element_id, field=field, start_at=slot.start_at, end_at=slot.end_at,
                    status=BookingStatus.active, rule_run_id=rule_run_id, created_by_id=created_by_id)
        except IntegrityError:
            # PostgreSQL's exclusion constraint: a concurrent booking committed after the check above. The
            # constraint waited for that transaction to commit, so the check now sees the booking it refused.
            conflict = await overlapping(resource.id, slot)
            if conflict is None:
                raise
            raise BookingConflict(conflict, resource) from None
        made.append(booking)
    return made


async def cancel(element_type: str, element_id: int, field: str) -> list[Booking]:
    """Cancel every active booking of the element's booking field: their slots are free again."""
    active = await Booking.filter(element_type=element_type, element_id=element_id, field=field,
                                  status=BookingStatus.active).select_for_update().order_by("start_at", "id")
    now = clock.utcnow()
    for booking in active:
        booking.status, booking.cancelled_at = BookingStatus.cancelled, now
        await booking.save(update_fields=["status", "cancelled_at"])
    return list(active)


async def cancel_one(booking: Booking) -> bool:
    """Cancel one booking (compare-and-set on its status): False when it was cancelled already."""
    now = clock.utcnow()
    changed = await Booking.filter(id=booking.id, status=BookingStatus.active).update(
        status=BookingStatus.cancelled, cancelled_at=now)
    if changed:
        booking.status, booking.cancelled_at = BookingStatus.cancelled, now
    return bool(changed)


async def resource_names(bookings: Sequence[Booking]) -> dict[int, str]:
    ids = {b.resource_id for b in bookings}
    return dict(await Resource.filter(id__in=ids).values_list("id", "name")) if ids else {}


def booked_text(bookings: Sequence[Booking], names: dict[int, str], service: Service | None) -> str:
    """Timeline words: "Booked Room 1 and Anna for Consultation, 2026-12-03 10:00-11:00 UTC"."""
    first = bookings[0]
    who = [names.get(b.resource_id, f"resource {b.resource_id}") for b in bookings]
    joined = who[0] if len(who) == 1 else ", ".join(who[:-1]) + " and " + who[-1]
    what = f" for {service.name}" if service else ""
    start, end = first.start_at.astimezone(UTC), first.end_at.astimezone(UTC)
    return f"Booked {joined}{what}, {start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC ({first.field})"


def cancelled_text(bookings: Sequence[Booking], names: dict[int, str]) -> str:
    parts = [f"{names.get(b.resource_id, b.resource_id)} {b.start_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
             for b in bookings]
    return f"Cancelled booking{'s' if len(parts) > 1 else ''}: {', '.join(parts)} ({bookings[0].field})"


def booked_event(bookings: Sequence[Booking], names: dict[int, str], service: Service | None) -> dict[str, Any]:
    """The data of the "resource booked" event (rules/triggers/resource_booked.py: its data_fields)."""
    first = bookings[0]
    return {
        "booking_id": first.id, "booking_ids": [b.id for b in bookings],
        "resource": ", ".join(names.get(b.resource_id, str(b.resource_id)) for b in bookings),
        "service": service.name if service else "", "field": first.field,
        "start_at": first.start_at.isoformat(), "end_at": first.end_at.isoformat(),
    }
