"""Document viewed: the customer opens the public link of a document of the element."""

from server.i18n import N_
from server.rules.triggers.base import DOCUMENT_VIEWED, Event, NoSettings, TriggerExample, TriggerType


class DocumentViewed(TriggerType[NoSettings]):
    key = "document_viewed"
    title = N_("Document viewed")
    summary = N_("The customer opens the public link of one of the element's documents.")
    gives = N_("the document and its number")
    event = DOCUMENT_VIEWED
    Settings = NoSettings
    data_fields = ("document_id", "number")
    example = TriggerExample("Document viewed", {}, Event(DOCUMENT_VIEWED, {"document_id": 1, "number": "OF-2026-001"}))

    def describe(self, settings: NoSettings) -> str:
        return "When the customer views a document of the element"


TRIGGER = DocumentViewed()
