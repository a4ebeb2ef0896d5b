"""History entry: an "information" entry in the element's history."""

from server.rules.actions.add_comment import AddComment
from server.rules.actions.base import Example


class HistoryEntry(AddComment):
    key = "history_entry"
    title = "History entry"
    group = "element"
    outputs = ("entry_id",)
    kind = "history"
    example = Example("Record the stage", {"text": "{{deal.title}} reached {{deal.stage.name}}"})


ACTION = HistoryEntry()
