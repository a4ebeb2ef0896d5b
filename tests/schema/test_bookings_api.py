"""Bookings through GraphQL as people use them: managers set up resources and services, whoever works on a deal
books and cancels it with the action's rules; a taken slot is a typed BookingConflictError naming the booking."""

import pytest

from server.actor import SYSTEM
from server.models import CustomField, Deal
from server.services import elements as element_service
from server.services import triggers as trigger_service
from tests.support import make_pipeline, make_token
from tests.support.api import Api, refused_fields

pytestmark = pytest.mark.production_backend

CREATE_RESOURCE = """mutation($input: ResourceInput!) { createResource(input: $input) {
  __typename ... on Resource { id name kind userId active } ... on ValidationError { errors { field message } }
  ... on ForbiddenError { message } } }"""
CREATE_SERVICE = """mutation($input: ServiceInput!) { createService(input: $input) {
  __typename ... on Service { id name durationMinutes } ... on ForbiddenError { message } } }"""
BOOK = """mutation($input: BookInput!) { bookResource(input: $input) { __typename
  ... on Booked { bookings { id field startAt endAt status resource { name } service { name } element { type id } } }
  ... on BookingConflictError { message field conflictingBooking { id startAt endAt element { id } } }
  ... on ValidationError { errors { field message } } ... on ForbiddenError { message } } }"""
CANCEL = """mutation($id: ID!) { cancelBooking(id: $id) { __typename ... on Booking { id status cancelledAt } } }"""
BOOKINGS = """query($resource: ID!, $from: DateTime!, $to: DateTime!, $cancelled: Boolean!) {
  bookings(resourceId: $resource, from: $from, to: $to, includeCancelled: $cancelled) { id status startAt } }"""
ELEMENT_BOOKINGS = """query($id: ID!) { elementBookings(elementType: "deal", elementId: $id, field: "visit") {
  id status resource { name } } }"""


async def setup(api: Api) -> tuple[str, str, dict[str, str], list[Deal], Deal]:
    """An admin and an employee, a room and a consultation, deals with the booking field "visit"."""
    _, admin = await make_token("admin", "Ada")
    worker, employee = await make_token("employee", "Emil")
    _, stages = await make_pipeline()
    await CustomField.create(entity_type="deal", code="visit", name="Site visit", type="booking")
    room = (await api.as_(admin, CREATE_RESOURCE, input={"name": "Room 1", "kind": "thing"}))["createResource"]
    service = (await api.as_(admin, CREATE_SERVICE, input={"name": "Consultation", "durationMinutes": 30}))
    deals = [await element_service.create_element("deal", {"title": f"Deal {n}"}, stage_id=stages["new"].id,
                                                  actor=SYSTEM) for n in range(2)]
    mine = await element_service.create_element("deal", {"title": "Emil's", "responsible": worker.id},
                                                stage_id=stages["new"].id, actor=SYSTEM)
    ids = {"room": room["id"], "service": service["createService"]["id"], "offer": str(stages["offer"].id)}
    return admin, employee, ids, deals, mine


def booking(deal: Deal, ids: dict[str, str], start: str, end: str | None = None) -> dict[str, object]:
    values: dict[str, object] = {"elementType": "deal", "elementId": str(deal.id), "field": "visit",
                                 "resourceIds": [ids["room"]], "startAt": start, "serviceId": ids["service"]}
    return {**values, "endAt": end} if end else values


async def test_book_cancel_and_rebook_through_the_api_with_a_typed_conflict(api, db):
    admin, _, ids, [first, second], _ = await setup(api)

    booked = (await api.as_(admin, BOOK, input=booking(first, ids, "2031-03-04T10:00:00Z")))["bookResource"]
    assert booked["__typename"] == "Booked"
    [made] = booked["bookings"]
    assert (made["startAt"], made["endAt"], made["status"]) == ("2031-03-04T10:00:00+00:00",
                                                                "2031-03-04T10:30:00+00:00", "active")
    assert (made["resource"], made["service"], made["element"]) == (
        {"name": "Room 1"}, {"name": "Consultation"}, {"type": "deal", "id": str(first.id)})
    adjacent = (await api.as_(admin, BOOK, input=booking(second, ids, "2031-03-04T10:30:00Z")))["bookResource"]
    assert adjacent["__typename"] == "Booked"

    clash = (await api.as_(admin, BOOK, input=booking(second, ids, "2031-03-04T10:15:00+00:00",
                                                      "2031-03-04T10:20:00+00:00")))["bookResource"]
    assert clash["__typename"] == "BookingConflictError" and clash["field"] == "startAt"
    assert clash["conflictingBooking"] == {"id": made["id"], "startAt": made["startAt"], "endAt": made["endAt"],
                                           "element": {"id": str(first.id)}}
    assert clash["message"] == (f"Room 1 is already booked then: booking {made['id']} (Room 1, 2031-03-04 "
                                f"10:00-10:30 UTC, for deal {first.id})")

    assert (await api.as_(admin, CANCEL, id=made["id"]))["cancelBooking"]["status"] == "cancelled"
    again = (await api.as_(admin, BOOK, input=booking(second, ids, "2031-03-04T10:15:00Z",
                                                      "2031-03-04T10:20:00Z")))["bookResource"]
    assert again["__typename"] == "Booked"

    window = {"resource": ids["room"], "from": "2031-03-04T00:00:00Z", "to": "2031-03-05T00:00:00Z"}
    active = (await api.as_(admin, BOOKINGS, **window, cancelled=False))["bookings"]
    everything = (await api.as_(admin, BOOKINGS, **window, cancelled=True))["bookings"]
    assert [b["startAt"][11:16] for b in active] == ["10:15", "10:30"]
    assert [(b["startAt"][11:16], b["status"]) for b in everything] == [
        ("10:00", "cancelled"), ("10:15", "active"), ("10:30", "active")]
    assert [b["status"] for b in (await api.as_(admin, ELEMENT_BOOKINGS, id=str(first.id)))["elementBookings"]] \
        == ["cancelled"]


async def test_an_end_before_the_start_is_refused_naming_end_at(api, db):
    admin, _, ids, [deal, _], _ = await setup(api)
    result = (await api.as_(admin, BOOK, input=booking(deal, ids, "2031-03-04T10:00:00Z",
                                                       "2031-03-04T09:00:00Z")))["bookResource"]
    assert list(refused_fields(result)) == ["endAt"]
    assert "must be after the start" in refused_fields(result)["endAt"]


async def test_employees_book_their_own_deals_and_only_managers_keep_resources(api, db):
    _, employee, ids, [theirs, _], mine = await setup(api)

    refused = (await api.as_(employee, CREATE_RESOURCE, input={"name": "Van", "kind": "thing"}))["createResource"]
    assert refused["__typename"] == "ForbiddenError"
    other = (await api.as_(employee, BOOK, input=booking(theirs, ids, "2031-03-04T10:00:00Z")))["bookResource"]
    assert other["__typename"] == "ForbiddenError"
    own = (await api.as_(employee, BOOK, input=booking(mine, ids, "2031-03-04T10:00:00Z")))["bookResource"]
    assert own["__typename"] == "Booked"


async def test_booking_through_the_api_fires_resource_booked(api, db):
    admin, _, ids, [deal, _], _ = await setup(api)
    await trigger_service.create_trigger(int(ids["offer"]), trigger_service.TriggerInput(
        trigger_type="resource_booked", name="Consultation booked",
        condition=[[{"field": "event.service", "op": "eq", "value": "Consultation"}]]), actor=SYSTEM)

    await api.as_(admin, BOOK, input=booking(deal, ids, "2031-03-04T10:00:00Z"))

    assert (await Deal.get(id=deal.id)).stage_id == int(ids["offer"])
