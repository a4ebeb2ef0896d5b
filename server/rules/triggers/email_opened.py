"""Email opened: the customer opens an email we sent about the element (the tracking pixel)."""

from pydantic import Field

from server.i18n import N_
from server.rules.triggers.base import EMAIL_OPENED, Event, Settings, TriggerExample, TriggerType, contains


class EmailOpenedSettings(Settings):
    subject_contains: str = Field(default="", max_length=200)


class EmailOpened(TriggerType[EmailOpenedSettings]):
    key = "email_opened"
    title = N_("Email opened")
    summary = N_("The customer opens an email we sent about the element.")
    gives = N_("the email's subject")
    event = EMAIL_OPENED
    Settings = EmailOpenedSettings
    data_fields = ("subject", "message_id")
    example = TriggerExample("Email opened", {}, Event(EMAIL_OPENED, {"subject": "Your offer", "message_id": 1}))

    def matches(self, settings: EmailOpenedSettings, event: Event) -> str | None:
        if settings.subject_contains and not contains(event.data.get("subject"), settings.subject_contains):
            return f"the opened email's subject does not contain “{settings.subject_contains}”"
        return None

    def describe(self, settings: EmailOpenedSettings) -> str:
        about = f" with “{settings.subject_contains}” in the subject" if settings.subject_contains else ""
        return f"When the customer opens an email{about}"


TRIGGER = EmailOpened()
