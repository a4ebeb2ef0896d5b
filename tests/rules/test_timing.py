"""SPEC §2 timing: delays, date-field anchors, time of day, company working time and the responsible's hours."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from server.rules.timing import Due, Timing, WorkingTime, compute_due

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC = UTC
FRIDAY_EVENING = datetime(2024, 5, 3, 18, 30, tzinfo=BERLIN)  # Friday, after 18:00 closing
COMPANY = WorkingTime(timezone="Europe/Berlin")


def due(timing: dict[str, Any], *, base: datetime = FRIDAY_EVENING, element: dict[str, Any] | None = None,
        company: WorkingTime = COMPANY, responsible: WorkingTime | None = None) -> Due:
    return compute_due(Timing.model_validate(timing), base=base, element=element or {},
                       company=company, responsible=responsible)


# ---------------------------------------------------------------- delays


def test_immediately_is_due_at_stage_entry():
    assert due({}).at == FRIDAY_EVENING
    assert due({"kind": "immediately"}).at == FRIDAY_EVENING


@pytest.mark.parametrize(
    ("amount", "unit", "delta"),
    [(15, "minutes", timedelta(minutes=15)), (2, "hours", timedelta(hours=2)), (3, "days", timedelta(days=3))],
)
def test_after_n_minutes_hours_days(amount, unit, delta):
    assert due({"kind": "after", "amount": amount, "unit": unit}).at == FRIDAY_EVENING + delta


def test_after_a_delay_at_a_time_of_day_takes_the_next_such_time():
    # Friday 18:30 + 1 day = Saturday 18:30; the next 09:00 after that is Sunday 09:00.
    assert due({"kind": "after", "amount": 1, "unit": "days", "time_of_day": "09:00"}).at == datetime(2024, 5, 5, 9, 0, tzinfo=BERLIN)
    # Friday 18:30 + 1 hour = 19:30; 21:00 the same evening is still ahead.
    assert due({"kind": "after", "amount": 1, "unit": "hours", "time_of_day": "21:00"}).at == datetime(2024, 5, 3, 21, 0, tzinfo=BERLIN)


# ---------------------------------------------------------------- date-field anchors


def test_at_a_date_field_with_time_of_day_in_the_company_time_zone():
    result = due({"kind": "at_field", "field": "close_date", "time_of_day": "10:00"}, element={"close_date": date(2024, 6, 1)})
    assert result.at == datetime(2024, 6, 1, 10, 0, tzinfo=BERLIN)
    assert result.at.astimezone(UTC) == datetime(2024, 6, 1, 8, 0, tzinfo=UTC)  # CEST is UTC+2


def test_at_a_date_field_without_time_of_day_is_midnight_local():
    result = due({"kind": "at_field", "field": "close_date"}, element={"close_date": "2024-06-01"})
    assert result.at == datetime(2024, 6, 1, 0, 0, tzinfo=BERLIN)


def test_before_a_date_field():
    result = due({"kind": "before_field", "field": "close_date", "amount": 2, "unit": "days", "time_of_day": "10:00"},
                 element={"close_date": date(2024, 6, 1)})
    assert result.at == datetime(2024, 5, 30, 10, 0, tzinfo=BERLIN)


def test_after_a_date_field():
    result = due({"kind": "after_field", "field": "close_date", "amount": 3, "unit": "hours"},
                 element={"close_date": date(2024, 6, 1)})
    assert result.at == datetime(2024, 6, 1, 3, 0, tzinfo=BERLIN)


def test_datetime_field_takes_the_time_of_day_on_its_local_date():
    # 23:30 UTC on 31 May is already 1 June in Berlin: the rule runs at 08:00 on 1 June, Berlin time.
    meeting = datetime(2024, 5, 31, 23, 30, tzinfo=UTC)
    result = due({"kind": "at_field", "field": "meeting_at", "time_of_day": "08:00"}, element={"meeting_at": meeting})
    assert result.at == datetime(2024, 6, 1, 8, 0, tzinfo=BERLIN)


@pytest.mark.parametrize("empty", [None, "", "not a date"])
@pytest.mark.parametrize("kind", ["at_field", "before_field", "after_field"])
def test_empty_anchor_date_skips_with_a_reason(kind, empty):
    result = due({"kind": kind, "field": "close_date", "amount": 1, "unit": "days"}, element={"close_date": empty})
    assert result.at is None
    assert result.skip_reason == "the anchor date field 'close_date' is empty"


def test_missing_anchor_field_skips_too():
    result = due({"kind": "at_field", "field": "close_date"}, element={})
    assert result == Due(None, "the anchor date field 'close_date' is empty")


def test_a_past_time_stays_past_so_it_runs_at_once():
    past = due({"kind": "at_field", "field": "close_date", "time_of_day": "10:00"}, element={"close_date": date(2020, 1, 6)})
    assert past.at == datetime(2020, 1, 6, 10, 0, tzinfo=BERLIN)
    assert past.at < FRIDAY_EVENING
    assert past.skip_reason is None
    before = due({"kind": "before_field", "field": "close_date", "amount": 30, "unit": "days"},
                 element={"close_date": date(2024, 5, 10)})
    assert before.at == datetime(2024, 4, 10, 0, 0, tzinfo=BERLIN)


# ---------------------------------------------------------------- working time


def test_company_working_time_moves_friday_evening_to_monday_morning():
    result = due({"kind": "immediately", "working_time": "company"})
    assert result.at == datetime(2024, 5, 6, 9, 0, tzinfo=BERLIN)
    assert result.at.astimezone(UTC) == datetime(2024, 5, 6, 7, 0, tzinfo=UTC)


def test_company_working_time_keeps_a_time_inside_working_hours():
    tuesday_noon = datetime(2024, 5, 7, 12, 0, tzinfo=BERLIN)
    assert due({"working_time": "company"}, base=tuesday_noon).at == tuesday_noon


def test_company_working_time_before_opening_waits_for_opening():
    tuesday_early = datetime(2024, 5, 7, 6, 15, tzinfo=BERLIN)
    assert due({"working_time": "company"}, base=tuesday_early).at == datetime(2024, 5, 7, 9, 0, tzinfo=BERLIN)


def test_company_working_time_skips_holidays():
    # Monday 6 May and Tuesday 7 May are holidays: Wednesday 09:00.
    company = WorkingTime(timezone="Europe/Berlin", holidays=frozenset({"2024-05-06", "2024-05-07"}))
    assert due({"working_time": "company"}, company=company).at == datetime(2024, 5, 8, 9, 0, tzinfo=BERLIN)


def test_company_working_time_applies_after_a_delay():
    # Thursday 17:30 + 1 hour = 18:30, after closing: Friday 09:00.
    thursday = datetime(2024, 5, 2, 17, 30, tzinfo=BERLIN)
    result = due({"kind": "after", "amount": 1, "unit": "hours", "working_time": "company"}, base=thursday)
    assert result.at == datetime(2024, 5, 3, 9, 0, tzinfo=BERLIN)


def test_company_calendar_with_custom_days_and_hours():
    six_days = WorkingTime(timezone="Europe/Berlin", days=(0, 1, 2, 3, 4, 5), start="10:00", end="14:00")
    assert due({"working_time": "company"}, company=six_days).at == datetime(2024, 5, 4, 10, 0, tzinfo=BERLIN)


def test_responsible_working_hours_in_their_own_time_zone():
    responsible = WorkingTime.from_user("America/New_York", {"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "17:00"})
    # Friday 18:30 Berlin is 12:30 in New York: inside their hours, so it stays.
    assert due({"working_time": "responsible"}, responsible=responsible).at == FRIDAY_EVENING
    # Friday 23:30 Berlin is 17:30 in New York: after their hours, Monday 08:00 New York.
    late = datetime(2024, 5, 3, 23, 30, tzinfo=BERLIN)
    assert due({"working_time": "responsible"}, base=late, responsible=responsible).at == datetime(2024, 5, 6, 8, 0, tzinfo=NEW_YORK)


def test_responsible_working_hours_ignore_the_company_calendar():
    responsible = WorkingTime.from_user("Europe/Berlin", {"days": [5, 6], "start": "10:00", "end": "12:00"})
    assert due({"working_time": "responsible"}, responsible=responsible).at == datetime(2024, 5, 4, 10, 0, tzinfo=BERLIN)


def test_a_past_time_in_working_time_stays_in_the_past():
    past_saturday = datetime(2020, 1, 4, 12, 0, tzinfo=BERLIN)
    result = due({"working_time": "company"}, base=past_saturday)
    assert result.at == datetime(2020, 1, 6, 9, 0, tzinfo=BERLIN)
    assert result.at < FRIDAY_EVENING


# ---------------------------------------------------------------- refused at save


@pytest.mark.parametrize(
    ("timing", "field", "message"),
    [
        ({"kind": "after"}, None, "a delay needs an amount above 0"),
        ({"kind": "after", "amount": 0, "unit": "days"}, None, "a delay needs an amount above 0"),
        ({"kind": "after", "amount": -5}, "amount", "greater than or equal to 0"),
        ({"kind": "before_field", "amount": 1}, None, "timing 'before_field' needs the date field"),
        ({"kind": "after_field", "amount": 1}, None, "timing 'after_field' needs the date field"),
        ({"kind": "at_field"}, None, "timing 'at_field' needs the date field"),
        ({"kind": "at_field", "field": ""}, None, "needs the date field"),
        ({"time_of_day": "25:00"}, "time_of_day", "'25:00' is not a time of day (HH:MM)"),
        ({"time_of_day": "9"}, "time_of_day", "is not a time of day"),
        ({"time_of_day": "nine:30"}, "time_of_day", "is not a time of day"),
        ({"time_of_day": "09:00:00"}, "time_of_day", "is not a time of day"),
        ({"kind": "someday"}, "kind", "Input should be"),
        ({"kind": "after", "amount": 1, "unit": "weeks"}, "unit", "Input should be"),
        ({"working_time": "always"}, "working_time", "Input should be"),
        ({"delay": 5}, "delay", "Extra inputs are not permitted"),
    ],
)
def test_invalid_timing_is_refused(timing, field, message):
    with pytest.raises(ValidationError) as refused:
        Timing.model_validate(timing)
    [error] = refused.value.errors()
    assert error["loc"] == ((field,) if field else ())
    assert message in error["msg"]


def test_describe_reads_like_the_designer():
    assert Timing().describe() == "immediately"
    assert Timing(kind="after", amount=2, unit="hours").describe() == "after 2 hours"
    assert Timing(kind="before_field", field="close_date", amount=1, unit="days", time_of_day="10:00",
                  working_time="company").describe() == "1 days before close_date at 10:00, in working time"
    assert Timing(kind="at_field", field="close_date", working_time="responsible").describe() == (
        "at close_date, in the responsible's working hours"
    )


def test_working_time_opens_at_local_nine_across_the_summer_time_switch():
    # Clocks go forward on Sunday 31 March 2024: Monday opens at 09:00 CEST = 07:00 UTC, not 08:00 UTC.
    saturday_utc = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)
    result = due({"working_time": "company"}, base=saturday_utc)
    assert result.at == datetime(2024, 4, 1, 7, 0, tzinfo=UTC)
