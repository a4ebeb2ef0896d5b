"""Schedule call: a call activity for the responsible(s), who are notified; it shows in their calendar feed."""

from server.i18n import N_
from server.rules.actions.activity import CreateActivity
from server.rules.actions.base import Example


class ScheduleCall(CreateActivity):
    key = "schedule_call"
    title = N_("Schedule call")
    summary = N_("Puts a call in the calendar of the responsible (or people chosen), who are notified.")
    gives = N_("the new call and when it starts")
    group = "communication"
    kind = "call"
    notifies = True
    example = Example("Call the customer", {"subject": "Call about {{deal.title}}", "start_in": 30,
                                            "start_unit": "minutes", "duration_minutes": 15})


ACTION = ScheduleCall()
