"""Chat message: a chat message from the element's client comes in."""

from pydantic import Field

from server.i18n import N_
from server.rules.triggers.base import CHAT_MESSAGE, Event, Settings, TriggerExample, TriggerType, contains


class ChatMessageSettings(Settings):
    text_contains: str = Field(default="", max_length=200)


class ChatMessage(TriggerType[ChatMessageSettings]):
    key = "chat_message"
    title = N_("Chat message")
    summary = N_("A chat message from the element's client comes in.")
    gives = N_("who wrote and the text")
    event = CHAT_MESSAGE
    Settings = ChatMessageSettings
    data_fields = ("from", "text")
    example = TriggerExample("Chat message", {}, Event(CHAT_MESSAGE, {"from": "anna@acme.example", "text": "Hello"}))

    def matches(self, settings: ChatMessageSettings, event: Event) -> str | None:
        if settings.text_contains and not contains(event.data.get("text"), settings.text_contains):
            return f"the message does not contain “{settings.text_contains}”"
        return None

    def describe(self, settings: ChatMessageSettings) -> str:
        about = f" containing “{settings.text_contains}”" if settings.text_contains else ""
        return f"When a chat message{about} comes in"


TRIGGER = ChatMessage()
