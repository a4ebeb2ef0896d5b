"""History entry: an "information" entry in the element's history."""

from server.rules.actions.add_comment import AddComment


class HistoryEntry(AddComment):
    key = "history_entry"
    title = "History entry"
    group = "element"
    outputs = ("entry_id",)
    kind = "history"


ACTION = HistoryEntry()
