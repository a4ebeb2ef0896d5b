"""Book a resource and Cancel booking as rules: the slot "in 2 days at 10:00" in the booked person's day, every
named resource or none, a taken slot failing the run at once with the booking in the way named, a repeated run
booking once, the "resource booked" trigger, and cancelling that frees the slot."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.actor import SYSTEM
from server.db import transaction
from server.errors import TransientActionError, ValidationFailed
from server.models import Booking, CustomField, Deal, Resource, RuleRun, Stage, TimelineEntry
from server.rules import bookings as booking_core
from server.rules.actions import registry
from server.rules.engine import EngineRunContext
from server.services import bookings as booking_service
from server.services import elements as element_service
from server.services import triggers as trigger_service
from server.services.bookings import BookingInput, ResourceInput, ServiceInput
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs

pytestmark = pytest.mark.production_backend

BERLIN = ZoneInfo("Europe/Berlin")


async def world() -> tuple[dict[str, Stage], dict[str, Resource], int]:
    """Deals with the booking field "visit", a room, a van and a fitter (in Berlin), a 90-minute service."""
    _, stages = await make_pipeline()
    await CustomField.create(entity_type="deal", code="visit", name="Site visit", type="booking")
    fitter = await make_user("Fitz", role="employee", timezone="Europe/Berlin")
    resources = {
        "room": await booking_service.create_resource(ResourceInput(name="Room 1", kind="thing"), actor=SYSTEM),
        "van": await booking_service.create_resource(ResourceInput(name="Van", kind="thing"), actor=SYSTEM),
        "fitter": await booking_service.create_resource(ResourceInput(name="Fitz", kind="employee",
                                                                      user_id=fitter.id), actor=SYSTEM),
    }
    service = await booking_service.create_service(ServiceInput(name="Site visit", duration_minutes=90), actor=SYSTEM)
    return stages, resources, service.id


def book_params(resources: list[Resource], service_id: int, **values: object) -> dict[str, object]:
    return {"field": "visit", "service": service_id, "resources": [r.id for r in resources], "start_in": 2,
            "start_unit": "days", "start_time": "10:00", **values}


async def new_deal(stage: Stage, title: str = "Roof") -> Deal:
    return await element_service.create_element("deal", {"title": title}, stage_id=stage.id, actor=SYSTEM)


async def test_a_rule_books_every_named_resource_in_two_days_at_ten_in_the_fitters_day(db):
    stages, resources, service_id = await world()
    await add_rule(stages["offer"], "book_resource", book_params([resources["fitter"], resources["van"]], service_id))

    deal = await new_deal(stages["offer"])
    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "succeeded", run.error
    made = await Booking.filter(element_id=deal.id).order_by("id")
    assert [b.resource_id for b in made] == [resources["fitter"].id, resources["van"].id]
    assert run.outputs["booking_ids"] == [b.id for b in made] and run.outputs["booking_id"] == made[0].id
    day = (run.finished_at + timedelta(days=2)).astimezone(BERLIN).date()  # type: ignore[operator]
    start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=BERLIN)
    assert {(b.start_at, b.end_at) for b in made} == {(start, start + timedelta(minutes=90))}
    assert run.outputs["start_at"] == start.astimezone(UTC).isoformat()
    [entry] = await TimelineEntry.filter(element_id=deal.id, rule_run_id=run.id)
    assert entry.text.startswith("Booked Fitz and Van for Site visit, ")


async def test_a_taken_slot_fails_the_run_at_once_naming_the_booking_in_the_way(db):
    stages, resources, service_id = await world()
    first = await new_deal(stages["new"], "First")
    now = datetime.now(UTC)
    [taken] = await booking_service.book(BookingInput("deal", first.id, "visit", [resources["van"].id],
                                                      now + timedelta(days=1), now + timedelta(days=4)), actor=SYSTEM)
    await add_rule(stages["offer"], "book_resource", book_params([resources["room"], resources["van"]], service_id))

    deal = await new_deal(stages["offer"], "Second")
    [run] = await wait_for_runs("deal", deal.id, 1)

    assert (run.status, run.attempts) == ("failed", 1)  # permanent: not retried
    assert "double booking refused: Van is already booked then: " in run.error
    assert f"booking {taken.id} (Van, " in run.error and f"for deal {first.id})" in run.error
    assert not await Booking.filter(element_id=deal.id).exists()  # the room was not booked either


async def test_a_rule_refuses_a_length_of_nothing_and_a_field_that_holds_no_bookings(db):
    stages, resources, service_id = await world()
    with pytest.raises(ValidationFailed) as refused:
        await add_rule(stages["offer"], "book_resource",
                       book_params([resources["room"]], service_id, field="title", duration_minutes=0))
    assert {e.field for e in refused.value.errors} == {"params.duration_minutes"}
    with pytest.raises(ValidationFailed) as refused:
        await add_rule(stages["offer"], "book_resource", book_params([resources["room"]], service_id, field="title"))
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("params.field", "'title' is not a booking field of a deal (booking fields: visit)")]


async def test_a_repeated_run_books_once(db, monkeypatch):
    """The first attempt books, then fails transiently: its bookings roll back with it, the retry books once."""
    stages, resources, service_id = await world()
    real = booking_core.booked_text
    calls: list[int] = []

    def flaky_once(*args: object, **kwargs: object) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise TransientActionError("timeline unavailable")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(booking_core, "booked_text", flaky_once)
    await add_rule(stages["offer"], "book_resource", book_params([resources["room"]], service_id))
    deal = await new_deal(stages["offer"])
    [run] = await wait_for_runs("deal", deal.id, 1)
    if db.kind == "postgres":  # the separate worker process has the real function: the first attempt succeeds
        assert run.attempts == 1
    else:
        assert run.attempts == 2
    assert run.status == "succeeded"
    [booking] = await Booking.filter(element_id=deal.id)
    assert run.outputs["booking_ids"] == [booking.id]

    # The same run delivered once more: it finds its booking instead of making (or refusing) another.
    monkeypatch.setattr(booking_core, "booked_text", real)
    action = registry()["book_resource"]
    run = await RuleRun.get(id=run.id)
    ctx = EngineRunContext(run=run, element_type="deal", element=await Deal.get(id=deal.id), actor_id=None)
    async with transaction():
        again = await action.execute(ctx, action.Params.model_validate(run.spec["params"]))
    assert again.outputs["booking_ids"] == [booking.id]  # type: ignore[union-attr]
    assert await Booking.filter(element_id=deal.id).count() == 1
    with pytest.raises(IntegrityError):  # and the table holds a run to one booking per resource
        async with in_transaction():
            await Booking.create(resource_id=resources["room"].id, element_type="deal", element_id=deal.id,
                                 field="visit", start_at=booking.start_at + timedelta(days=30),
                                 end_at=booking.end_at + timedelta(days=30), rule_run_id=run.id)


async def test_a_booking_by_a_rule_fires_resource_booked_and_the_trigger_moves_the_deal(db):
    stages, resources, service_id = await world()
    await trigger_service.create_trigger(stages["invoice"].id, trigger_service.TriggerInput(
        trigger_type="resource_booked", name="Visit booked",
        condition=[[{"field": "event.service", "op": "eq", "value": "Site visit"}]]), actor=SYSTEM)
    await add_rule(stages["offer"], "book_resource", book_params([resources["room"]], service_id))

    deal = await new_deal(stages["offer"])
    runs = await wait_for_runs("deal", deal.id, 1)

    assert [r.status for r in runs] == ["succeeded"]
    assert (await Deal.get(id=deal.id)).stage_id == stages["invoice"].id


async def test_cancel_booking_frees_every_slot_of_the_field(db):
    stages, resources, service_id = await world()
    deal = await new_deal(stages["new"])
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    made = await booking_service.book(BookingInput("deal", deal.id, "visit", [resources["room"].id,
                                                   resources["van"].id], start, start + timedelta(hours=1)),
                                      actor=SYSTEM)
    await add_rule(stages["lost"], "cancel_booking", {"field": "visit"})

    await element_service.move_element("deal", deal.id, stages["lost"].id, actor=SYSTEM)
    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "succeeded" and run.outputs == {"cancelled": 2, "booking_ids": [b.id for b in made]}
    assert await Booking.filter(element_id=deal.id, status="active").count() == 0
    other = await new_deal(stages["new"], "Next")
    assert len(await booking_service.book(BookingInput("deal", other.id, "visit", [resources["room"].id],
                                                       start, start + timedelta(hours=1)), actor=SYSTEM)) == 1
