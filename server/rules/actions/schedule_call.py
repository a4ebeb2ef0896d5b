"""Schedule call: a call activity for the responsible(s), who are notified; it shows in their calendar feed."""

from server.rules.actions.activity import CreateActivity


class ScheduleCall(CreateActivity):
    key = "schedule_call"
    title = "Schedule call"
    group = "communication"
    kind = "call"
    notifies = True


ACTION = ScheduleCall()
