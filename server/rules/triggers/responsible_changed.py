"""Responsible changed: the element gets another responsible."""

from server.i18n import N_
from server.rules.triggers.base import Event, NoSettings, RESPONSIBLE_CHANGED, TriggerExample, TriggerType


class ResponsibleChanged(TriggerType[NoSettings]):
    key = "responsible_changed"
    title = N_("Responsible changed")
    summary = N_("The element gets another responsible.")
    gives = N_("the old and the new responsible")
    event = RESPONSIBLE_CHANGED
    Settings = NoSettings
    data_fields = ("old", "new")
    example = TriggerExample("Responsible changed", {}, Event(RESPONSIBLE_CHANGED, {"old": 1, "new": 2}))

    def describe(self, settings: NoSettings) -> str:
        return "When the responsible person changes"


TRIGGER = ResponsibleChanged()
