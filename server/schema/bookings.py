"""Resources, services and bookings in GraphQL: managers keep the resources and services, people book and cancel
with the rules the Book a resource action keeps (services/bookings.py decides who may do what). A taken slot is a
typed `BookingConflictError` naming the booking in the way."""

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from server import models
from server.errors import Forbidden, NotFound, ValidationFailed
from server.kinds import BookingStatus, ResourceKind
from server.services.bookings import MAX_RESOURCES
from server.schema.context import actor_of
from server.schema.errors import ForbiddenError, NotFoundError, ValidationError, graphql_path, result_of
from server.schema.ids import gid, opt_gid, opt_int, to_int
from server.schema.kinds import ElementType
from server.services import bookings as booking_service
from server.services.access import Acting
from server.services.paging import MAX_PAGE, page_size

strawberry.enum(ResourceKind, description="employee: a person, booked in their calendar; thing: a room, a car.")
strawberry.enum(BookingStatus, description="Only active bookings hold their slot.")


@strawberry.type
class Resource:
    """Something booked by the hour: an employee or a thing."""

    id: strawberry.ID
    name: str
    kind: ResourceKind
    user_id: strawberry.ID | None
    active: bool

    @classmethod
    def of(cls, row: models.Resource) -> "Resource":
        return cls(id=gid(row.id), name=row.name, kind=ResourceKind(row.kind), user_id=opt_gid(row.user_id),
                   active=row.active)


@strawberry.type
class Service:
    """What a resource is booked for, with its usual length."""

    id: strawberry.ID
    name: str
    duration_minutes: int

    @classmethod
    def of(cls, row: models.Service) -> "Service":
        return cls(id=gid(row.id), name=row.name, duration_minutes=row.duration_minutes)


@strawberry.type
class BookingElement:
    type: ElementType
    id: strawberry.ID


@strawberry.type
class Booking:
    """A resource booked for a lead or deal over [startAt, endAt), under one of its booking fields."""

    id: strawberry.ID
    resource_id: strawberry.ID
    service_id: strawberry.ID | None
    element: BookingElement
    field: str
    start_at: datetime
    end_at: datetime
    status: BookingStatus
    rule_run_id: strawberry.ID | None = strawberry.field(description="The rule run that booked it, if a rule did.")
    created_at: datetime
    cancelled_at: datetime | None

    @strawberry.field
    async def resource(self) -> Resource | None:
        row = await models.Resource.get_or_none(id=int(self.resource_id))
        return Resource.of(row) if row else None

    @strawberry.field
    async def service(self) -> Service | None:
        row = await models.Service.get_or_none(id=int(self.service_id)) if self.service_id else None
        return Service.of(row) if row else None

    @classmethod
    def of(cls, row: models.Booking) -> "Booking":
        return cls(id=gid(row.id), resource_id=gid(row.resource_id), service_id=opt_gid(row.service_id),
                   element=BookingElement(type=ElementType(row.element_type), id=gid(row.element_id)),
                   field=row.field, start_at=row.start_at, end_at=row.end_at, status=BookingStatus(row.status),
                   rule_run_id=opt_gid(row.rule_run_id), created_at=row.created_at, cancelled_at=row.cancelled_at)


@strawberry.type
class Booked:
    """Every resource asked for, booked for the one slot."""

    bookings: list[Booking]


@strawberry.type
class BookingConflictError:
    """The slot is taken: nothing was booked. `conflictingBooking` is the active booking in the way."""

    message: str
    field: str
    conflicting_booking: Booking


@strawberry.input
class ResourceInput:
    """Fields left out keep their value on update. An employee resource names its user."""

    name: str | None = None
    kind: str | None = None
    user_id: strawberry.ID | None = None
    active: bool | None = None

    def to_service(self) -> booking_service.ResourceInput:
        return booking_service.ResourceInput(name=self.name, kind=self.kind, user_id=opt_int(self.user_id, "user_id"),
                                             active=self.active)


@strawberry.input
class ServiceInput:
    name: str | None = None
    duration_minutes: int | None = None


@strawberry.input
class BookInput:
    """Book `resourceIds` (all or none) for the element's booking field `field`. Without `endAt` the booking
    lasts `durationMinutes`, else the service's duration."""

    element_type: str
    element_id: strawberry.ID
    field: str
    resource_ids: list[strawberry.ID]
    start_at: datetime
    end_at: datetime | None = None
    service_id: strawberry.ID | None = None
    duration_minutes: int | None = None


Refusals = ValidationError | NotFoundError | ForbiddenError
ResourceResult = Annotated[Resource | Refusals, strawberry.union("ResourceResult")]
ServiceResult = Annotated[Service | Refusals, strawberry.union("ServiceResult")]
BookResult = Annotated[Booked | BookingConflictError | Refusals, strawberry.union("BookResult")]
CancelBookingResult = Annotated[Booking | Refusals, strawberry.union("CancelBookingResult")]


@strawberry.type
class BookingQuery:
    @strawberry.field(description=f"The bookable resources, by name (at most `first`, up to {MAX_PAGE}).")
    async def resources(self, info: Info, include_inactive: bool = False, first: int = MAX_PAGE) -> list[Resource]:
        actor_of(info)
        rows = await booking_service.list_resources(include_inactive=include_inactive)
        return [Resource.of(r) for r in rows[:page_size(first)]]

    @strawberry.field(description=f"The services resources are booked for (at most `first`, up to {MAX_PAGE}).")
    async def services(self, info: Info, first: int = MAX_PAGE) -> list[Service]:
        actor_of(info)
        return [Service.of(s) for s in (await booking_service.list_services())[:page_size(first)]]

    @strawberry.field(description="A resource's bookings that share a moment with [from, to) (at most 62 days), "
                                  f"by start (at most `first`, up to {MAX_PAGE}).")
    async def bookings(self, info: Info, resource_id: strawberry.ID,
                       from_: Annotated[datetime, strawberry.argument(name="from")], to: datetime,
                       include_cancelled: bool = False, first: int = MAX_PAGE) -> list[Booking]:
        actor = actor_of(info)
        rows = await booking_service.resource_bookings(to_int(resource_id, "resource_id"), from_, to, actor=actor,
                                                       include_cancelled=include_cancelled)
        return [Booking.of(b) for b in rows[:page_size(first)]]

    @strawberry.field(description="A lead's or deal's bookings (cancelled ones too), of one booking field if "
                                  f"`field` is given, by start (at most `first`, up to {MAX_PAGE}).")
    async def element_bookings(self, info: Info, element_type: str, element_id: strawberry.ID,
                               field: str | None = None, first: int = MAX_PAGE) -> list[Booking]:
        actor = actor_of(info)
        rows = await booking_service.element_bookings(element_type, to_int(element_id, "element_id"), actor=actor,
                                                      field=field)
        return [Booking.of(b) for b in rows[:page_size(first)]]


async def _book(data: BookInput, actor: Acting) -> Booked | BookingConflictError | Refusals:
    try:
        made = await booking_service.book(booking_service.BookingInput(
            element_type=data.element_type, element_id=to_int(data.element_id, "element_id"), field=data.field,
            resource_ids=[to_int(r, "resource_ids") for r in data.resource_ids[:MAX_RESOURCES + 1]],
            start_at=data.start_at, end_at=data.end_at, service_id=opt_int(data.service_id, "service_id"),
            duration_minutes=data.duration_minutes), actor=actor)
    except booking_service.BookingConflict as exc:
        [error] = exc.errors
        return BookingConflictError(message=error.message, field=graphql_path(error.field),
                                    conflicting_booking=Booking.of(exc.conflict))
    except ValidationFailed as exc:
        return ValidationError.of(exc)
    except NotFound as exc:
        return NotFoundError.of(exc)
    except Forbidden as exc:
        return ForbiddenError.of(exc)
    return Booked(bookings=[Booking.of(b) for b in made])


@strawberry.type
class BookingMutation:
    @strawberry.mutation(description="Admins and managers. A bookable resource.")
    async def create_resource(self, info: Info, input: ResourceInput) -> ResourceResult:
        actor = actor_of(info)
        return await result_of(lambda: booking_service.create_resource(input.to_service(), actor=actor), Resource.of)

    @strawberry.mutation(description="Admins and managers. An inactive resource keeps its bookings and takes no "
                                     "new ones.")
    async def update_resource(self, info: Info, id: strawberry.ID, input: ResourceInput) -> ResourceResult:
        actor = actor_of(info)
        return await result_of(lambda: booking_service.update_resource(to_int(id, "id"), input.to_service(),
                                                                       actor=actor), Resource.of)

    @strawberry.mutation(description="Admins and managers.")
    async def create_service(self, info: Info, input: ServiceInput) -> ServiceResult:
        actor = actor_of(info)
        return await result_of(lambda: booking_service.create_service(booking_service.ServiceInput(
            name=input.name, duration_minutes=input.duration_minutes), actor=actor), Service.of)

    @strawberry.mutation(description="Admins and managers.")
    async def update_service(self, info: Info, id: strawberry.ID, input: ServiceInput) -> ServiceResult:
        actor = actor_of(info)
        return await result_of(lambda: booking_service.update_service(to_int(id, "id"), booking_service.ServiceInput(
            name=input.name, duration_minutes=input.duration_minutes), actor=actor), Service.of)

    @strawberry.mutation(description="Whoever may work on the element. Books every resource for the slot or none; "
                                     "a taken slot answers BookingConflictError. On the element's timeline, and "
                                     "the event resource booked triggers listen to.")
    async def book_resource(self, info: Info, input: BookInput) -> BookResult:
        return await _book(input, actor_of(info))

    @strawberry.mutation(description="Whoever may work on the element. The slot is free again; cancelling a "
                                     "cancelled booking changes nothing.")
    async def cancel_booking(self, info: Info, id: strawberry.ID) -> CancelBookingResult:
        actor = actor_of(info)
        return await result_of(lambda: booking_service.cancel_booking(to_int(id, "id"), actor=actor), Booking.of)
