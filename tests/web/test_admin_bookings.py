"""Resources, services and a resource's week in the admin over plain HTTP, against `pipewright serve` with the demo
data: forms need the CSRF token, refusals come back inline, and the week shows the demo's partner visit (booked by
its Book a resource rule) as a block in its day's column, linking to the deal."""

import asyncio
import sqlite3
import time
from datetime import datetime, timedelta
from typing import Any

from tests.support.admin import Server, csrf_of
from tests.web.test_admin_triggers import logged_in


def rows(server: Server, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.db_path) as connection:
        return connection.execute(sql, args).fetchall()


async def demo_booking(server: Server) -> tuple[int, int, datetime, int]:
    """The demo's partner visit, once its rule has run: (booking id, resource id, start, deal id)."""
    deadline = time.monotonic() + 20
    while True:
        found = rows(server, "SELECT b.id, b.resource_id, b.start_at, b.element_id FROM booking b "
                             "JOIN resource r ON r.id = b.resource_id WHERE r.name = 'Showroom Munich'")
        if found:
            booking_id, resource_id, start, deal_id = found[0]
            return int(booking_id), int(resource_id), datetime.fromisoformat(str(start)), int(deal_id)
        if time.monotonic() > deadline:
            raise AssertionError("the demo's Book a resource rule booked nothing in 20 s")
        await asyncio.sleep(0.1)


async def test_resources_are_added_refused_inline_and_edited_with_csrf(server: Server) -> None:
    async with logged_in(server, "bookings-resources@example.com") as http:
        listed = await http.get("/admin/resources")
        assert listed.status_code == 200
        assert 'href="/admin/resources">Resources</a>' in listed.text  # in the navigation
        assert 'value="Showroom Munich"' in listed.text and 'value="Jonas Weber"' in listed.text
        token = csrf_of(listed.text)

        assert (await http.post("/admin/resources", data={"name": "Van", "kind": "thing"})).status_code == 403
        refused = await http.post("/admin/resources", data={"name": "Van", "kind": "employee", "csrf_token": token})
        assert refused.status_code == 422
        assert '<a href="#new-user_id">User</a>: an employee resource names the user it books' in refused.text
        assert 'id="new-name" name="name" value="Van"' in refused.text
        assert rows(server, "SELECT id FROM resource WHERE name = 'Van'") == []

        added = await http.post("/admin/resources", data={"name": "Van", "kind": "thing", "active": "on",
                                                          "csrf_token": token})
        [(van_id, kind, active)] = rows(server, "SELECT id, kind, active FROM resource WHERE name = 'Van'")
        assert added.status_code == 303 and added.headers["location"] == f"/admin/resources?done=created#resource-{van_id}"
        assert (kind, active) == ("thing", 1)

        saved = await http.post(f"/admin/resources/{van_id}", data={"name": "Van 2", "kind": "thing",
                                                                    "csrf_token": token})
        assert saved.status_code == 303
        assert rows(server, "SELECT name, active FROM resource WHERE id = ?", van_id) == [("Van 2", 0)]
        taken = await http.post(f"/admin/resources/{van_id}", data={"name": "Showroom Munich", "kind": "thing",
                                                                    "csrf_token": token})
        assert taken.status_code == 422 and "there is a resource named &#39;Showroom Munich&#39; already" in taken.text


async def test_services_are_added_and_a_length_of_nothing_is_refused(server: Server) -> None:
    async with logged_in(server, "bookings-services@example.com") as http:
        listed = await http.get("/admin/services")
        assert 'value="Partner visit"' in listed.text and 'value="90"' in listed.text
        token = csrf_of(listed.text)
        refused = await http.post("/admin/services", data={"name": "Survey", "duration_minutes": "0",
                                                           "csrf_token": token})
        assert refused.status_code == 422 and "must be 1 to 10080 minutes" in refused.text
        added = await http.post("/admin/services", data={"name": "Survey", "duration_minutes": "45",
                                                         "csrf_token": token})
        assert added.status_code == 303
        assert rows(server, "SELECT duration_minutes FROM service WHERE name = 'Survey'") == [(45,)]


async def test_the_week_of_a_resource_shows_the_demo_booking_as_a_block_in_its_day(server: Server) -> None:
    booking_id, resource_id, start, deal_id = await demo_booking(server)
    monday = start.date() - timedelta(days=start.weekday())
    async with logged_in(server, "bookings-week@example.com") as http:
        week = await http.get(f"/admin/resources/{resource_id}/week?week={start.date()}")

    assert week.status_code == 200
    html = week.text
    assert html.count('<ol class="day"') == 7
    assert f'id="day-{monday}">{monday:%a %d %b}</div>' in html
    column = html.split(f'aria-labelledby="day-{start.date()}"')[1].split("</ol>")[0]
    quarter = (start.hour * 60 + start.minute) // 15
    assert f'class="block q-{quarter} len-6" id="booking-{booking_id}"' in column  # 90 minutes: six quarters
    assert f'<a href="/admin/deals/{deal_id}">Alpenblick: guest Wi-Fi resale</a>' in column
    assert f"{start:%H:%M}–{start + timedelta(minutes=90):%H:%M}" in column and "<small>Partner visit</small>" in column
    assert f'week={monday - timedelta(days=7)}" rel="prev">' in html
    assert f'week={monday + timedelta(days=7)}" rel="next">' in html
    assert '<link rel="stylesheet" href="/admin/static/bookings.css">' in html


async def test_the_week_before_is_empty_and_any_day_shows_its_monday(server: Server) -> None:
    _, resource_id, start, _ = await demo_booking(server)
    earlier = start.date() - timedelta(days=7)
    async with logged_in(server, "bookings-before@example.com") as http:
        week = await http.get(f"/admin/resources/{resource_id}/week?week={earlier}")
        css = await http.get("/admin/static/bookings.css")
    assert 'class="block' not in week.text
    monday = earlier - timedelta(days=earlier.weekday())
    assert f"Week of {monday:%b} {monday.day}, {monday.year} (UTC)" in week.text and monday.weekday() == 0
    assert css.status_code == 200 and ".q-95 { grid-row-start: 96; }" in css.text
