"""Every user's iCalendar feed: RFC 5545 text calendar clients read, at a secret URL, with stable UIDs."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from icalendar import Calendar

from server.models import Activity
from server.services import activities as activity_service
from server.services import calendar
from server.services import elements as element_service
from server.services.access import SYSTEM, Actor
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs

pytestmark = pytest.mark.production_backend


async def feed(client: httpx.AsyncClient, user_id: int) -> tuple[httpx.Response, Calendar]:
    path = activity_service.calendar_path(await activity_service.calendar_url_token(user_id, actor=SYSTEM))
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response, Calendar.from_ical(response.content)


def events(cal: Calendar) -> dict[str, Any]:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


async def test_a_meeting_scheduled_by_a_rule_is_in_the_responsibles_feed_at_the_right_time(client):
    ann = await make_user("Ann", timezone="Europe/Berlin")
    bob = await make_user("Bob")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "schedule_meeting", {
        "subject": "Kick-off, site visit; bring plans", "description": "Roof access\nladder needed",
        "start_field": "close_date", "start_in": 0, "start_time": "14:30", "duration_minutes": 90,
        "important": True, "reminder_minutes": 15, "auto_complete": True,
    })
    deal = await element_service.create_element(
        "deal", {"title": "Acme", "close_date": "2030-07-01", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM
    )
    [run] = await wait_for_runs("deal", deal.id, 1)
    assert run.status == "succeeded", run.error
    [meeting] = await Activity.filter(rule_run_id=run.id)

    response, cal = await feed(client, ann.id)

    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert (str(cal["VERSION"]), str(cal["CALSCALE"])) == ("2.0", "GREGORIAN") and cal["PRODID"]
    event = events(cal)[f"activity-{meeting.id}@pipewright"]
    # 14:30 in Berlin in summer (CEST, UTC+2) is 12:30 UTC, written in UTC form.
    assert event.decoded("DTSTART") == datetime(2030, 7, 1, 12, 30, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2030, 7, 1, 14, 0, tzinfo=UTC)
    assert b"DTSTART:20300701T123000Z\r\n" in response.content
    assert str(event["SUMMARY"]) == "Kick-off, site visit; bring plans"
    assert str(event["DESCRIPTION"]) == "Roof access\nladder needed\n\nDeal: Acme"
    assert (int(event["SEQUENCE"]), str(event["STATUS"]), int(event["PRIORITY"])) == (0, "CONFIRMED", 1)
    assert event.decoded("DTSTAMP") and event.decoded("LAST-MODIFIED")
    [alarm] = event.walk("VALARM")
    assert alarm.decoded("TRIGGER") == timedelta(minutes=-15)
    _, others = await feed(client, bob.id)
    assert events(others) == {}

    await element_service.move_element("deal", deal.id, stages["invoice"].id, actor=SYSTEM)

    _, cal = await feed(client, ann.id)
    event = events(cal)[f"activity-{meeting.id}@pipewright"]  # the same UID: clients update, not duplicate
    assert int(event["SEQUENCE"]) == 1
    assert str(event["SUMMARY"]) == "Done: Kick-off, site visit; bring plans"
    assert event.walk("VALARM") == []
    assert event.decoded("DTSTART") == datetime(2030, 7, 1, 12, 30, tzinfo=UTC)


async def test_the_feed_is_valid_text_with_crlf_and_folded_lines(client):
    ann = await make_user("Ann")
    long_subject = "Übergabe " + "sehr langer Termin mit Umlauten äöü " * 6
    await Activity.create(kind="call", subject=long_subject.strip(), start_at=datetime(2030, 1, 2, 8, tzinfo=UTC),
                          end_at=datetime(2030, 1, 2, 8, 15, tzinfo=UTC), responsible_id=ann.id)

    response, cal = await feed(client, ann.id)

    raw = response.content
    assert raw.startswith(b"BEGIN:VCALENDAR\r\n") and raw.endswith(b"END:VCALENDAR\r\n")
    lines = raw.split(b"\r\n")[:-1]
    assert b"\n" not in b"".join(lines)
    assert all(len(line) <= 75 for line in lines)
    assert any(line.startswith(b" ") for line in lines)  # the summary was folded
    for line in lines:
        line.decode("utf-8")  # never folded inside a character
    [event] = cal.walk("VEVENT")
    assert str(event["SUMMARY"]) == long_subject.strip()
    assert str(event["CATEGORIES"].cats[0]) == "Call"
    assert "PRIORITY" not in event and event.walk("VALARM") == []


async def test_an_unknown_or_rotated_token_is_not_found(client):
    ann = await make_user("Ann")
    old = await activity_service.calendar_url_token(ann.id, actor=SYSTEM)
    assert await activity_service.calendar_url_token(ann.id, actor=SYSTEM) == old  # created once, then kept
    assert len(old) >= 40

    assert (await client.get("/calendar/not-a-token.ics")).status_code == 404
    assert (await client.get(activity_service.calendar_path(old))).status_code == 200
    new = await activity_service.rotate_calendar_token(ann.id, actor=Actor(ann.id, "employee"))

    assert new != old
    assert (await client.get(activity_service.calendar_path(old))).status_code == 404
    assert (await client.get(activity_service.calendar_path(new))).status_code == 200
    assert await activity_service.calendar_url(ann.id, base_url="https://crm.example/", actor=SYSTEM) == \
        f"https://crm.example/calendar/{new}.ics"


def test_text_values_are_escaped_and_long_lines_folded_at_75_octets():
    assert calendar.text("a\\b;c,d\ne\r\nf") == "a\\\\b\\;c\\,d\\ne\\nf"
    line = "SUMMARY:" + "é" * 60
    folded = calendar.fold(line)
    parts = folded.split("\r\n")
    assert [len(p.encode()) for p in parts] == [74, 55]  # 8 + 33×2 octets; a 34th "é" would make 76
    assert parts[1].startswith(" ")
    assert "".join(p.removeprefix(" ") for p in parts) == line
    assert [len(p) for p in calendar.fold("X:" + "a" * 200).split("\r\n")] == [75, 75, 54]  # 202 = 75 + 74 + 53, continuations start with a space
    assert calendar.fold("SHORT:x") == "SHORT:x"
