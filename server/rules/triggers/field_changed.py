"""Field changed: a watched field of the element changes (`event.old` and `event.new` in conditions)."""

from pydantic import Field

from server.i18n import N_
from server.rules.actions.base import stage_entity_type
from server.rules.elements import field_types
from server.rules.triggers.base import FIELD_CHANGED, Event, Settings, TriggerExample, TriggerType


class FieldChangedSettings(Settings):
    fields: list[str] = Field(min_length=1, max_length=50, description="the fields to watch")


class FieldChanged(TriggerType[FieldChangedSettings]):
    key = "field_changed"
    title = N_("Field changed")
    summary = N_("A field you pick changes on the element.")
    gives = N_("the field, its old and its new value")
    event = FIELD_CHANGED
    Settings = FieldChangedSettings
    data_fields = ("field", "old", "new")
    example = TriggerExample("Field changed", {"fields": ["amount"]}, Event(FIELD_CHANGED, {"field": "amount", "old": "1000.00", "new": "2500.00"}))

    def matches(self, settings: FieldChangedSettings, event: Event) -> str | None:
        if event.data.get("field") not in settings.fields:
            return f"“{event.data.get('field')}” is not a watched field ({', '.join(settings.fields)})"
        return None

    async def check(self, settings: FieldChangedSettings, *, stage_id: int) -> list[tuple[str, str]]:
        entity_type = await stage_entity_type(stage_id)
        known = await field_types(entity_type)
        return [(f"fields.{i}", f"{entity_type}s have no field '{name}'")
                for i, name in enumerate(settings.fields) if name not in known]

    def describe(self, settings: FieldChangedSettings) -> str:
        return f"When {', '.join(settings.fields)} changes"


TRIGGER = FieldChanged()
