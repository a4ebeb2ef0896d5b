"""Task status changed: a task linked to the element changes status."""

from typing import Literal
from pydantic import Field

from server.i18n import N_
from server.rules.triggers.base import Event, Settings, TASK_STATUS_CHANGED, TriggerExample, TriggerType


class TaskStatusChangedSettings(Settings):
    statuses: list[Literal["open", "closed"]] = Field(default_factory=list, description="empty: any status")


class TaskStatusChanged(TriggerType[TaskStatusChangedSettings]):
    key = "task_status_changed"
    title = N_("Task status changed")
    summary = N_("A task of the element changes status (done, closed…).")
    gives = N_("the task, its new and its old status")
    event = TASK_STATUS_CHANGED
    Settings = TaskStatusChangedSettings
    data_fields = ("task_id", "title", "status", "old_status")
    example = TriggerExample("Task status changed", {"statuses": ["closed"]}, Event(TASK_STATUS_CHANGED, {"task_id": 1, "title": "Call", "status": "closed", "old_status": "open"}))

    def matches(self, settings: TaskStatusChangedSettings, event: Event) -> str | None:
        if settings.statuses and event.data.get("status") not in settings.statuses:
            return f"the task became {event.data.get('status')}, not {' or '.join(settings.statuses)}"
        return None

    def describe(self, settings: TaskStatusChangedSettings) -> str:
        status = f" becomes {' or '.join(settings.statuses)}" if settings.statuses else "'s status changes"
        return f"When a task of the element{status}"


TRIGGER = TaskStatusChanged()
