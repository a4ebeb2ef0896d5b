"""Inbound webhook: an HTTP POST to the trigger's own secret URL, naming the element; its JSON is `event.payload`."""

from server.i18n import N_
from server.rules.triggers.base import Event, NoSettings, TriggerExample, TriggerType, WEBHOOK


class Webhook(TriggerType[NoSettings]):
    key = "webhook"
    title = N_("Inbound webhook")
    summary = N_("Another system posts to the trigger's own secret URL.")
    gives = N_("the JSON it posted")
    event = WEBHOOK
    Settings = NoSettings
    data_fields = ("payload",)
    example = TriggerExample("Inbound webhook", {}, Event(WEBHOOK, {"payload": {"source": "shop"}}))

    def describe(self, settings: NoSettings) -> str:
        return "When its webhook URL is called"


TRIGGER = Webhook()
