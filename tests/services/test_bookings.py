"""Issue 15, resources and bookings: a resource is never booked twice at once, on either database; slots are
half-open; cancelling frees a slot; bad slots are refused naming the field; bookings are on the timeline, fire
"resource booked" and show in the booked employee's calendar."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.actor import SYSTEM, Actor
from server.errors import Forbidden, ValidationFailed
from server.kinds import Role
from server.models import Booking, CustomField, Deal, Resource, Stage, TimelineEntry
from server.services import activities as activity_service
from server.services import bookings as booking_service
from server.services import elements as element_service
from server.services import triggers as trigger_service
from server.services.bookings import BookingConflict, BookingInput, ResourceInput, ServiceInput
from tests.support import make_pipeline, make_user

pytestmark = pytest.mark.production_backend

DAY = datetime(2031, 3, 4, tzinfo=UTC)


def at(hh_mm: str) -> datetime:
    hours, minutes = hh_mm.split(":")
    return DAY + timedelta(hours=int(hours), minutes=int(minutes))


async def booking_world(deals: int = 1) -> tuple[Resource, list[Deal], dict[str, Stage]]:
    """A room, a deal pipeline whose deals have the booking field "visit", and `deals` deals."""
    _, stages = await make_pipeline()
    await CustomField.create(entity_type="deal", code="visit", name="Site visit", type="booking")
    room = await booking_service.create_resource(ResourceInput(name="Room 1", kind="thing"), actor=SYSTEM)
    made = [await element_service.create_element("deal", {"title": f"Deal {n}"}, stage_id=stages["new"].id,
                                                 actor=SYSTEM) for n in range(deals)]
    return room, made, stages


def slot(deal: Deal, resource: Resource, start: str, end: str) -> BookingInput:
    return BookingInput("deal", deal.id, "visit", [resource.id], at(start), at(end))


async def test_fifty_concurrent_bookings_of_one_slot_give_exactly_one(db):
    """50 deals ask for overlapping hours of one room at the same moment: the database lets one through."""
    room, deals, _ = await booking_world(50)
    starts = [at("10:00") + timedelta(minutes=n) for n in range(50)]  # every pair overlaps (60 min each)

    outcomes = await asyncio.gather(*(
        booking_service.book(BookingInput("deal", deal.id, "visit", [room.id], start, start + timedelta(hours=1)),
                             actor=SYSTEM) for deal, start in zip(deals, starts, strict=True)
    ), return_exceptions=True)

    made = [o for o in outcomes if isinstance(o, list)]
    refused = [o for o in outcomes if isinstance(o, BookingConflict)]
    assert len(made) == 1 and len(refused) == 49, [type(o).__name__ + str(o) for o in outcomes if not isinstance(o, (list, BookingConflict))]
    [[winner]] = made
    assert {r.conflict.id for r in refused} == {winner.id}
    assert all(f"booking {winner.id} (Room 1, " in str(r) and f"for deal {winner.element_id})" in str(r)
               for r in refused)
    assert await Booking.filter(resource_id=room.id, status="active").count() == 1


@pytest.mark.production_only  # SQLite keeps bookings apart by its serialised write transaction, not a constraint
async def test_the_database_itself_refuses_overlapping_rows_on_postgresql(db):
    """Not the service's check: two overlapping active rows written straight to the table are refused."""
    room, [deal], _ = await booking_world()
    values = {"resource_id": room.id, "element_type": "deal", "element_id": deal.id, "field": "visit"}
    await Booking.create(**values, start_at=at("10:00"), end_at=at("11:00"))
    await Booking.create(**values, start_at=at("11:00"), end_at=at("12:00"))  # adjacent: fine
    await Booking.create(**values, start_at=at("10:30"), end_at=at("11:30"), status="cancelled")  # not active
    with pytest.raises(IntegrityError, match="booking_no_overlap"):
        async with in_transaction():
            await Booking.create(**values, start_at=at("10:59"), end_at=at("11:01"))
    with pytest.raises(IntegrityError, match="booking_end_after_start"):
        async with in_transaction():
            await Booking.create(**values, start_at=at("14:00"), end_at=at("13:00"))


async def test_adjacent_slots_both_succeed(db):
    room, [first, second], _ = await booking_world(2)

    [morning] = await booking_service.book(slot(first, room, "10:00", "11:00"), actor=SYSTEM)
    [later] = await booking_service.book(slot(second, room, "11:00", "12:00"), actor=SYSTEM)

    assert (morning.end_at, later.start_at) == (at("11:00"), at("11:00"))
    with pytest.raises(BookingConflict, match=f"booking {later.id} "):
        await booking_service.book(slot(first, room, "11:59", "12:30"), actor=SYSTEM)


async def test_cancelling_frees_the_slot_for_a_new_booking(db):
    room, [first, second], _ = await booking_world(2)
    [taken] = await booking_service.book(slot(first, room, "10:00", "11:00"), actor=SYSTEM)
    with pytest.raises(BookingConflict):
        await booking_service.book(slot(second, room, "10:30", "11:30"), actor=SYSTEM)

    cancelled = await booking_service.cancel_booking(taken.id, actor=SYSTEM)
    [rebooked] = await booking_service.book(slot(second, room, "10:30", "11:30"), actor=SYSTEM)

    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert rebooked.status == "active"
    texts = await TimelineEntry.filter(element_type="deal", element_id=first.id).order_by("id").values_list("text", flat=True)
    assert texts[-2:] == ["Booked Room 1, 2031-03-04 10:00-11:00 UTC (visit)",
                          "Cancelled booking: Room 1 2031-03-04 10:00 UTC (visit)"]


async def test_a_slot_that_ends_before_it_starts_is_refused_naming_the_end(db):
    room, [deal], _ = await booking_world()
    for start, end in (("11:00", "10:00"), ("10:00", "10:00")):
        with pytest.raises(ValidationFailed) as refused:
            await booking_service.book(slot(deal, room, start, end), actor=SYSTEM)
        assert [e.field for e in refused.value.errors] == ["end_at"]
        assert "must be after the start" in refused.value.errors[0].message
    assert not await Booking.exists()


async def test_a_booking_needs_a_booking_field_and_active_resources(db):
    room, [deal], _ = await booking_world()
    with pytest.raises(ValidationFailed, match="'priority' is not a booking field of a deal .booking fields: visit"):
        await booking_service.book(BookingInput("deal", deal.id, "priority", [room.id], at("10:00"), at("11:00")),
                                   actor=SYSTEM)
    await booking_service.update_resource(room.id, ResourceInput(active=False), actor=SYSTEM)
    with pytest.raises(ValidationFailed) as refused:
        await booking_service.book(BookingInput("deal", deal.id, "visit", [room.id, 999], at("10:00"), at("11:00")),
                                   actor=SYSTEM)
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("resource_ids.0", "Room 1 is not active"), ("resource_ids.1", "resource 999 does not exist")]


async def test_a_booking_without_an_end_lasts_the_service(db):
    room, [deal], _ = await booking_world()
    consultation = await booking_service.create_service(ServiceInput(name="Consultation", duration_minutes=45),
                                                        actor=SYSTEM)
    [booking] = await booking_service.book(BookingInput("deal", deal.id, "visit", [room.id], at("09:00"),
                                                        service_id=consultation.id), actor=SYSTEM)
    assert booking.end_at == at("09:45")


async def test_employees_book_only_their_own_deals_and_managers_keep_the_resources(db):
    room, [deal], _ = await booking_world()
    maria = await make_user("Maria", role="employee")
    with pytest.raises(Forbidden):
        await booking_service.book(slot(deal, room, "10:00", "11:00"), actor=Actor(maria.id, Role.employee))
    with pytest.raises(Forbidden):
        await booking_service.create_resource(ResourceInput(name="Van", kind="thing"),
                                              actor=Actor(maria.id, Role.employee))
    with pytest.raises(ValidationFailed, match="an employee resource names the user it books"):
        await booking_service.create_resource(ResourceInput(name="Maria", kind="employee"), actor=SYSTEM)
    with pytest.raises(ValidationFailed, match="there is a resource named 'Room 1' already"):
        await booking_service.create_resource(ResourceInput(name="Room 1", kind="thing"), actor=SYSTEM)


async def test_a_resource_booked_trigger_moves_the_deal(db):
    room, [deal], stages = await booking_world()
    await trigger_service.create_trigger(stages["offer"].id, trigger_service.TriggerInput(
        trigger_type="resource_booked", name="Visit booked",
        condition=[[{"field": "event.resource", "op": "eq", "value": "Room 1"}]]), actor=SYSTEM)

    await booking_service.book(slot(deal, room, "10:00", "11:00"), actor=SYSTEM)

    assert (await Deal.get(id=deal.id)).stage_id == stages["offer"].id


async def test_the_booked_employee_sees_the_booking_in_their_calendar_feed(db):
    _, [deal], _ = await booking_world()
    anna = await make_user("Anna", role="employee")
    resource = await booking_service.create_resource(ResourceInput(name="Anna (fitter)", kind="employee",
                                                                   user_id=anna.id), actor=SYSTEM)
    fitting = await booking_service.create_service(ServiceInput(name="Fitting", duration_minutes=90), actor=SYSTEM)
    [booking] = await booking_service.book(BookingInput("deal", deal.id, "visit", [resource.id], at("08:00"),
                                                        service_id=fitting.id), actor=SYSTEM)
    token = await activity_service.calendar_url_token(anna.id, actor=SYSTEM)

    feed = await activity_service.calendar_feed(token)
    event = feed.split(f"UID:booking-{booking.id}@pipewright\r\n")[1].split("END:VEVENT")[0]
    assert "DTSTART:20310304T080000Z\r\nDTEND:20310304T093000Z\r\nSUMMARY:Booked: Fitting\r\n" in event
    assert "DESCRIPTION:Resource: Anna (fitter)\\nDeal: Deal 0\r\n" in event and "STATUS:CONFIRMED" in event

    await booking_service.cancel_booking(booking.id, actor=SYSTEM)
    event = (await activity_service.calendar_feed(token)).split(f"UID:booking-{booking.id}@pipewright\r\n")[1]
    assert "SEQUENCE:1\r\n" in event and "STATUS:CANCELLED\r\n" in event.split("END:VEVENT")[0]
