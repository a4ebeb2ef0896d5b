"""History entry: an "information" entry in the element's history."""

from server.i18n import N_
from server.rules.actions.add_comment import AddComment
from server.rules.actions.base import Example


class HistoryEntry(AddComment):
    key = "history_entry"
    title = N_("History entry")
    summary = N_("Adds an entry to the element's history.")
    gives = N_("the entry")
    group = "element"
    outputs = ("entry_id",)
    kind = "history"
    example = Example("Record the stage", {"text": "{{deal.title}} reached {{deal.stage.name}}"})


ACTION = HistoryEntry()
