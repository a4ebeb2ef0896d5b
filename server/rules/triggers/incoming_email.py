"""Incoming email: an email from the element's client reaches the inbound mail receiver."""

from pydantic import Field

from server.i18n import N_
from server.rules.triggers.base import EMAIL_RECEIVED, Event, Settings, TriggerExample, TriggerType, contains


class IncomingEmailSettings(Settings):
    subject_contains: str = Field(default="", max_length=200)
    from_contains: str = Field(default="", max_length=200)


class IncomingEmail(TriggerType[IncomingEmailSettings]):
    key = "incoming_email"
    title = N_("Incoming email")
    summary = N_("An email from the element's client arrives.")
    gives = N_("the sender, subject and text")
    event = EMAIL_RECEIVED
    Settings = IncomingEmailSettings
    data_fields = ("from", "subject", "text", "message_id")
    example = TriggerExample("Incoming email", {"subject_contains": "offer"}, Event(EMAIL_RECEIVED, {"from": "anna@acme.example", "subject": "Re: your offer"}))

    def matches(self, settings: IncomingEmailSettings, event: Event) -> str | None:
        if settings.subject_contains and not contains(event.data.get("subject"), settings.subject_contains):
            return f"the subject does not contain “{settings.subject_contains}”"
        if settings.from_contains and not contains(event.data.get("from"), settings.from_contains):
            return f"the sender does not contain “{settings.from_contains}”"
        return None

    def describe(self, settings: IncomingEmailSettings) -> str:
        words = "When an email comes in"
        if settings.from_contains:
            words += f" from an address containing “{settings.from_contains}”"
        if settings.subject_contains:
            words += f" with “{settings.subject_contains}” in the subject"
        return words


TRIGGER = IncomingEmail()
