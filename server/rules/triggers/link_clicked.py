"""Link clicked: the customer clicks a tracked link in an email about the element."""

from pydantic import Field

from server.i18n import N_
from server.rules.triggers.base import Event, LINK_CLICKED, Settings, TriggerExample, TriggerType


class LinkClickedSettings(Settings):
    url: str = Field(default="", max_length=2000, description="only this link (the start of its address); empty: any")


class LinkClicked(TriggerType[LinkClickedSettings]):
    key = "link_clicked"
    title = N_("Link clicked")
    summary = N_("The customer clicks a tracked link in an email about the element.")
    gives = N_("the link and the email's subject")
    event = LINK_CLICKED
    Settings = LinkClickedSettings
    data_fields = ("url", "subject", "message_id")
    example = TriggerExample("Link clicked", {"url": "https://example.com/pricing"}, Event(LINK_CLICKED, {"url": "https://example.com/pricing?plan=pro", "subject": "Offer"}))

    def matches(self, settings: LinkClickedSettings, event: Event) -> str | None:
        if settings.url and not str(event.data.get("url") or "").startswith(settings.url):
            return f"the link clicked is not {settings.url}"
        return None

    def describe(self, settings: LinkClickedSettings) -> str:
        return f"When the customer clicks {settings.url}" if settings.url else "When the customer clicks a link in an email"


TRIGGER = LinkClicked()
