"""Schedule meeting: a meeting for the responsible(s), who are notified; it shows in their calendar feed."""

from server.i18n import N_
from server.rules.actions.activity import CreateActivity
from server.rules.actions.base import Example


class ScheduleMeeting(CreateActivity):
    key = "schedule_meeting"
    title = N_("Schedule meeting")
    summary = N_("Puts a meeting in the calendar of the responsible (or people chosen), who are notified.")
    gives = N_("the new meeting (one per person) and when it starts")
    group = "communication"
    kind = "meeting"
    notifies = True
    example = Example("Kick-off meeting", {"subject": "Kick-off: {{deal.title}}", "start_in": 2, "start_unit": "days",
                                           "duration_minutes": 60})


ACTION = ScheduleMeeting()
