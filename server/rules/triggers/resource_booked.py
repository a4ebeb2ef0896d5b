"""Resource booked: a resource is booked for the element."""

from server.i18n import N_
from server.rules.triggers.base import Event, NoSettings, RESOURCE_BOOKED, TriggerExample, TriggerType


class ResourceBooked(TriggerType[NoSettings]):
    key = "resource_booked"
    title = N_("Resource booked")
    summary = N_("A resource is booked for the element.")
    gives = N_("the resource, service and the booked time")
    event = RESOURCE_BOOKED
    Settings = NoSettings
    data_fields = ("booking_id", "resource", "service", "field", "start_at", "end_at")  # rules/bookings.booked_event
    example = TriggerExample("Resource booked", {}, Event(RESOURCE_BOOKED, {
        "booking_id": 1, "resource": "Room 1", "service": "Consultation", "field": "consultation",
        "start_at": "2026-12-03T10:00:00+00:00", "end_at": "2026-12-03T11:00:00+00:00"}))

    def describe(self, settings: NoSettings) -> str:
        return "When a resource is booked for the element"


TRIGGER = ResourceBooked()
