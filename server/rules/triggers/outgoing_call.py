"""Outgoing call: a call reported by the telephony webhook, outgoing, with the element's client."""

from pydantic import Field

from server.i18n import N_
from server.rules.triggers.base import CALL, Event, Settings, TriggerExample, TriggerType


class OutgoingCallSettings(Settings):
    min_duration_s: int = Field(default=0, ge=0, le=86_400, description="only calls at least this long")


class OutgoingCall(TriggerType[OutgoingCallSettings]):
    key = "outgoing_call"
    title = N_("Outgoing call")
    summary = N_("Someone calls the element's client (reported by the telephony webhook).")
    gives = N_("the numbers, the call's length and its recording")
    event = CALL
    Settings = OutgoingCallSettings
    data_fields = ("direction", "from", "to", "duration_s", "recording_url")
    example = TriggerExample("Outgoing call", {}, Event(CALL, {"direction": "outgoing", "from": "+49301234567", "duration_s": 60}))

    def matches(self, settings: OutgoingCallSettings, event: Event) -> str | None:
        if event.data.get("direction") != "outgoing":
            return f"the call was {event.data.get('direction')}, not outgoing"
        if settings.min_duration_s and int(event.data.get("duration_s") or 0) < settings.min_duration_s:
            return f"the call lasted {event.data.get('duration_s')} s, less than {settings.min_duration_s} s"
        return None

    def describe(self, settings: OutgoingCallSettings) -> str:
        longer = f" lasting at least {settings.min_duration_s} s" if settings.min_duration_s else ""
        return f"When there is an outgoing call{longer}"


TRIGGER = OutgoingCall()
