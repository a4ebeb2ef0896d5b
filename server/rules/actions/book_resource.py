"""Book a resource: every named resource booked for one slot under the element's booking field, or none.

The start is "in 2 days at 10:00" style, counted from now, from a date field of the element or from a date
template; the length is the service's unless the rule gives one. A taken slot fails the run at once (a
permanent failure naming the booking in the way); a repeated run finds the bookings its first attempt made.
"""

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from server import clock
from server.errors import ActionError, ValidationFailed
from server.i18n import N_
from server.kinds import ResourceKind
from server.models import Booking, CustomField, Resource, Service, User
from server.rules import bookings, elements
from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params, Template, stage_entity_type
from server.rules.context import RunContext
from server.rules.preview import ElementView, PreviewContext
from server.rules.timing import UNITS, HhMm, as_moment, describe_start, zone
from server.rules.triggers.base import RESOURCE_BOOKED


class BookResourceParams(Params):
    field: str = Field(min_length=1, max_length=64, description="the booking field of the element")
    service: int | None = Field(default=None, description="the service booked (its length is the default)")
    resources: list[int] = Field(min_length=1, max_length=bookings.MAX_RESOURCES)
    """the resources to book, by id: the first one free at that time is booked"""
    # Start: `start_in` units from now, from the date field `start_field`, or from the date `start_date` (a
    # template such as {{deal.close_date}}); `start_time` "HH:MM" on the start day, in the booked person's zone.
    start_in: int = Field(default=1, ge=-100_000, le=100_000)
    """when the booking starts: this many start units after the run (negative: before start_field)"""
    start_unit: Literal["minutes", "hours", "days"] = "days"
    """the unit of start_in"""
    start_field: str | None = None
    """a date field of the element to count start_in from; empty: from the run"""
    start_date: Template = ""
    """the start day as a template giving YYYY-MM-DD, instead of start_in; empty: start_in counts"""
    start_time: HhMm = None
    """HH:MM on the start day; empty: the time the count gives"""
    duration_minutes: int | None = Field(default=None, ge=1, le=bookings.MAX_DURATION_MINUTES,
                                         description="empty: the service's duration")

    @model_validator(mode="after")
    def _one_start(self) -> "BookResourceParams":
        if self.start_field and self.start_date:
            raise ValueError("start from a date field (start_field) or a date (start_date), not both")
        if self.start_in < 0 and not (self.start_field or self.start_date):
            raise ValueError("a start before now needs a date to count back from (start_field or start_date)")
        if self.service is None and self.duration_minutes is None:
            raise ValueError("name a service or give duration_minutes: the booking needs a length")
        return self

    def describe_start(self) -> str:
        anchor = self.start_field or (f"“{self.start_date}”" if self.start_date else "")
        return describe_start(self.start_in, self.start_unit, anchor, self.start_time)


class BookResource(Action[BookResourceParams]):
    key = "book_resource"
    title = N_("Book a resource")
    summary = N_("Books a room, vehicle or person for a time slot, refusing overlaps.")
    gives = N_("the booking (one per resource) with its start and end")
    group = "tasks"
    Params = BookResourceParams
    outputs = ("booking_id", "booking_ids", "start_at", "end_at")
    example = Example("Book the showroom for a consultation", {
        "field": "consultation", "service": "Consultation", "resources": ["Showroom"], "start_in": 2,
        "start_unit": "days", "start_time": "10:00",
    })

    async def prepare_example(self, params: dict[str, Any], *, entity_type: str) -> dict[str, Any]:
        """The example names its booking field, service and resources: found by name, or made."""
        await CustomField.get_or_create(entity_type=entity_type, code=params["field"],
                                        defaults={"name": params["field"].title(), "type": bookings.BOOKING_FIELD_TYPE})
        service, _ = await Service.get_or_create(name=params["service"], defaults={"duration_minutes": 60})
        resources = [(await Resource.get_or_create(name=name, defaults={"kind": ResourceKind.thing}))[0].id
                     for name in params["resources"]]
        return {**params, "service": service.id, "resources": resources}

    async def check(self, params: BookResourceParams, *, stage_id: int) -> list[tuple[str, str]]:
        entity_type = await stage_entity_type(stage_id)
        problems: list[tuple[str, str]] = []
        for attempt in (bookings.check_field(entity_type, params.field), bookings.active_resources(params.resources),
                        bookings.service_or_none(params.service)):
            try:
                await attempt
            except ValidationFailed as exc:
                problems += [(e.field, e.message) for e in exc.errors]
        if params.start_field and params.start_field != "created_at":
            field_type = (await elements.field_types(entity_type)).get(params.start_field, ("", []))[0]
            if field_type not in ("date", "datetime"):
                problems.append(("start_field", f"'{params.start_field}' is not a date field of a {entity_type}"))
        return problems

    async def execute(self, ctx: RunContext, params: BookResourceParams) -> Done:
        earlier = await Booking.filter(rule_run_id=ctx.run.id).order_by("id")
        if earlier:  # this run booked already (a repeated delivery)
            return self._done(earlier)
        resources, service, slot, _ = await self._wanted(ctx, params)
        try:
            made = await bookings.book(resources, slot, element_type=ctx.element_type, element_id=ctx.element.id,
                                       field=params.field, service=service, rule_run_id=ctx.run.id,
                                       created_by_id=ctx.actor_id)
        except bookings.BookingConflict as exc:
            raise ActionError(f"double booking refused: {exc.errors[0].message}") from None
        except ValidationFailed as exc:
            raise ActionError(f"cannot book: {exc}") from None
        names = {r.id: r.name for r in resources}
        await ctx.add_entry("history", bookings.booked_text(made, names, service))
        await ctx.fire_event(RESOURCE_BOOKED, bookings.booked_event(made, names, service))
        return self._done(made)

    def _done(self, made: list[Booking]) -> Done:
        return Done({"booking_id": made[0].id, "booking_ids": [b.id for b in made],
                     "start_at": made[0].start_at.isoformat(), "end_at": made[0].end_at.isoformat()})

    async def _zone(self, ctx: ElementView, resources: list[Resource]) -> str:
        """Whose day "at 10:00" is: the first booked employee's, else the element's responsible's."""
        user_id = next((r.user_id for r in resources if r.user_id), None) or ctx.element.responsible_id
        user = await User.get_or_none(id=user_id) if user_id else None
        return user.timezone if user else "UTC"

    async def _start(self, ctx: ElementView, params: BookResourceParams, tz_name: str) -> datetime:
        offset = params.start_in * UNITS[params.start_unit]
        if params.start_field or params.start_date:
            raw = (await ctx.context()).get(params.start_field) if params.start_field else params.start_date
            anchor = as_moment(raw, tz_name, None)
            if anchor is None:
                what = f"{ctx.element_type}'s {params.start_field} is empty" if params.start_field else \
                    f"start date {params.start_date!r} is not a date (YYYY-MM-DD or ISO 8601)"
                raise ActionError(f"the {what}: the booking has no start")
            start = anchor + offset
        else:
            start = clock.utcnow() + offset
        if params.start_time:
            start = as_moment(start.astimezone(zone(tz_name)).date(), tz_name, params.start_time) or start
        return start.astimezone(UTC).replace(second=0, microsecond=0)

    async def _wanted(self, ctx: ElementView, params: BookResourceParams
                      ) -> tuple[list[Resource], Service | None, bookings.Slot, str]:
        """The resources, the service, the slot and the time zone it was computed in; what cannot be booked fails
        the run with the reason."""
        try:
            resources = await bookings.active_resources(params.resources)
            service = await bookings.service_or_none(params.service)
            length = params.duration_minutes or (service.duration_minutes if service else 0)
            tz_name = await self._zone(ctx, resources)
            start = await self._start(ctx, params, tz_name)
            return resources, service, bookings.check_slot(start, start + timedelta(minutes=length)), tz_name
        except ValidationFailed as exc:
            raise ActionError(f"cannot book: {exc}") from None

    async def simulate(self, ctx: PreviewContext, params: BookResourceParams) -> str:
        resources, service, slot, tz_name = await self._wanted(ctx, params)
        start, length = slot.start_at, int((slot.end_at - slot.start_at).total_seconds() // 60)
        for resource in resources:
            if (taken := await bookings.overlapping(resource.id, slot)) is not None:
                raise ActionError(f"double booking refused: {bookings.describe(taken, resource)}")
        what = ", ".join(f"“{r.name}”" for r in resources)
        service_text = f" for the service “{service.name}”" if service else ""
        return (f"books {what}{service_text} {ctx.when(start, tz_name)} for {length} minutes, "
                f"in the booking field “{params.field}”")

    def describe(self, params: BookResourceParams, names: Names = NO_NAMES) -> str:
        count = len(params.resources)
        what = f"{count} resource{'s' if count != 1 else ''}"
        length = f"{params.duration_minutes} minutes" if params.duration_minutes else "the service's duration"
        return f"Books {what} in the booking field “{params.field}”, starting {params.describe_start()}, for {length}"


ACTION = BookResource()
