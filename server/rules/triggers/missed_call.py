"""Missed call: a call reported by the telephony webhook, missed, with the element's client."""

from pydantic import Field

from server.i18n import N_
from server.rules.triggers.base import CALL, Event, Settings, TriggerExample, TriggerType


class MissedCallSettings(Settings):
    min_duration_s: int = Field(default=0, ge=0, le=86_400, description="only calls at least this long")


class MissedCall(TriggerType[MissedCallSettings]):
    key = "missed_call"
    title = N_("Missed call")
    summary = N_("A call with the element's client is missed.")
    gives = N_("the numbers and the recording")
    event = CALL
    Settings = MissedCallSettings
    data_fields = ("direction", "from", "to", "duration_s", "recording_url")
    example = TriggerExample("Missed call", {}, Event(CALL, {"direction": "missed", "from": "+49301234567", "duration_s": 60}))

    def matches(self, settings: MissedCallSettings, event: Event) -> str | None:
        if event.data.get("direction") != "missed":
            return f"the call was {event.data.get('direction')}, not missed"
        if settings.min_duration_s and int(event.data.get("duration_s") or 0) < settings.min_duration_s:
            return f"the call lasted {event.data.get('duration_s')} s, less than {settings.min_duration_s} s"
        return None

    def describe(self, settings: MissedCallSettings) -> str:
        longer = f" lasting at least {settings.min_duration_s} s" if settings.min_duration_s else ""
        return f"When there is a missed call{longer}"


TRIGGER = MissedCall()
