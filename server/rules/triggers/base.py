"""What every trigger type is: the event it listens to, a typed settings model, a match on the event's data,
and a description in words.

A trigger type module declares the event kind it listens to (`event`, one of EVENTS), the names of the event's
data that conditions may compare (`data_fields`, reached as `event.<name>`), and an example for the contract
test. `matches` says why an event does not fit the settings (None: it fits); the trigger's condition is checked
after that, by the matcher (`rules/triggering.py`).
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

# The events triggers listen to. Each is fired where it happens (see rules/triggering.py: `fire`).
EMAIL_RECEIVED = "email_received"
EMAIL_OPENED = "email_opened"
LINK_CLICKED = "link_clicked"
CALL = "call"  # data: direction incoming | outgoing | missed
FORM_SUBMITTED = "form_submitted"
CHAT_MESSAGE = "chat_message"
WEBHOOK = "webhook"
FIELD_CHANGED = "field_changed"
RESPONSIBLE_CHANGED = "responsible_changed"
PAYMENT_RECEIVED = "payment_received"
DOCUMENT_VIEWED = "document_viewed"
TASK_STATUS_CHANGED = "task_status_changed"
RESOURCE_BOOKED = "resource_booked"
EVENTS = (EMAIL_RECEIVED, EMAIL_OPENED, LINK_CLICKED, CALL, FORM_SUBMITTED, CHAT_MESSAGE, WEBHOOK, FIELD_CHANGED,
          RESPONSIBLE_CHANGED, PAYMENT_RECEIVED, DOCUMENT_VIEWED, TASK_STATUS_CHANGED, RESOURCE_BOOKED)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoSettings(Settings):
    pass


@dataclass(frozen=True)

class Event:
    """Something that happened to an element (or to a contact or company, reaching its open leads and deals)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)

class TriggerExample:
    name: str
    settings: dict[str, Any]
    event: Event  # an event the example's settings match
    entity_type: str = "deal"


S = TypeVar("S", bound=Settings)


class TriggerType(Generic[S]):
    key: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str] = ""  # one line for the catalogue: when it fires
    gives: ClassVar[str] = ""  # what its conditions may compare (data_fields), in words
    event: ClassVar[str]  # a member of EVENTS
    Settings: type[S]
    data_fields: ClassVar[tuple[str, ...]] = ()  # event.<name> a condition may compare
    example: ClassVar[TriggerExample]

    def matches(self, settings: S, event: Event) -> str | None:
        """Why this event does not fit the settings, in words; None when it does."""
        return None

    async def check(self, settings: S, *, stage_id: int) -> list[tuple[str, str]]:
        """Checks that need the database: (field, message)."""
        return []

    def describe(self, settings: S) -> str:
        """The "when" of the trigger, in words: "When a missed call comes in"."""
        return f"When {self.title.lower()}"


def contains(haystack: Any, needle: str) -> bool:
    return needle.casefold() in str(haystack or "").casefold()
