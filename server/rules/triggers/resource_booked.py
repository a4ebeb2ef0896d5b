"""Resource booked: a resource is booked for the element."""

from server.rules.triggers.base import Event, NoSettings, RESOURCE_BOOKED, TriggerExample, TriggerType


class ResourceBooked(TriggerType[NoSettings]):
    key = "resource_booked"
    title = "Resource booked"
    event = RESOURCE_BOOKED
    Settings = NoSettings
    data_fields = ("booking_id", "resource", "start_at")
    example = TriggerExample("Resource booked", {}, Event(RESOURCE_BOOKED, {"booking_id": 1, "resource": "Room 1"}))

    def describe(self, settings: NoSettings) -> str:
        return "When a resource is booked for the element"


TRIGGER = ResourceBooked()
