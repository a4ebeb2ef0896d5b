"""Web form submitted: a web form of the element's client is submitted."""

from pydantic import Field

from server.i18n import N_
from server.rules.triggers.base import Event, FORM_SUBMITTED, Settings, TriggerExample, TriggerType


class WebFormSettings(Settings):
    form: str = Field(default="", max_length=64, pattern=r"^[a-z0-9_-]*$", description="the form's key; empty: any form")


class WebForm(TriggerType[WebFormSettings]):
    key = "web_form"
    title = N_("Web form submitted")
    summary = N_("The element's client submits a web form.")
    gives = N_("the form and its fields")
    event = FORM_SUBMITTED
    Settings = WebFormSettings
    data_fields = ("form", "fields")
    example = TriggerExample("Web form submitted", {"form": "contact-us"}, Event(FORM_SUBMITTED, {"form": "contact-us", "fields": {"message": "Call me"}}))

    def matches(self, settings: WebFormSettings, event: Event) -> str | None:
        if settings.form and event.data.get("form") != settings.form:
            return f"the form was “{event.data.get('form')}”, not “{settings.form}”"
        return None

    def describe(self, settings: WebFormSettings) -> str:
        return f"When the web form “{settings.form}” is submitted" if settings.form else "When a web form is submitted"


TRIGGER = WebForm()
