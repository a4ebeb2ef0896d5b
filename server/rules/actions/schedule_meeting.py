"""Schedule meeting: a meeting for the responsible(s), who are notified; it shows in their calendar feed."""

from server.rules.actions.activity import CreateActivity


class ScheduleMeeting(CreateActivity):
    key = "schedule_meeting"
    title = "Schedule meeting"
    group = "communication"
    kind = "meeting"
    notifies = True


ACTION = ScheduleMeeting()
