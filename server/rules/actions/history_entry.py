"""History entry: an "information" entry in the element's history."""

from server.rules.actions.add_comment import AddComment
from server.rules.actions.base import Example


class HistoryEntry(AddComment):
    key = "history_entry"
    title = "History entry"
    summary = "Adds an entry to the element's history."
    gives = "the entry"
    group = "element"
    outputs = ("entry_id",)
    kind = "history"
    example = Example("Record the stage", {"text": "{{deal.title}} reached {{deal.stage.name}}"})


ACTION = HistoryEntry()
