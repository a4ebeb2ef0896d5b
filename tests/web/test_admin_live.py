"""The admin's live timeline stream (server/admin_live.py): Server-Sent Events from the live hub, for the session's
user, for one element; bounded per user, and nothing held once the client has gone."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from server import config, live
from server.services import auth, elements
from server.services.access import SYSTEM, Actor
from tests.support import make_pipeline, make_user, wait_until

pytestmark = pytest.mark.production_backend


async def next_notice(lines: AsyncIterator[str]) -> dict[str, str]:
    """The next event of the stream (its field lines), skipping comments; fails after 10 s."""
    fields: dict[str, str] = {}
    while True:
        line = await asyncio.wait_for(anext(lines), 10)
        if line == "" and fields.get("event"):
            return fields
        if line and not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


async def test_the_stream_tells_of_new_entries_of_its_element_only_and_lets_go_of_a_gone_client(served, db) -> None:  # type: ignore[no-untyped-def]
    await make_pipeline()
    boss = await make_user("Boss", role="manager")
    deal = await elements.create_element("deal", {"title": "Roof"}, actor=SYSTEM)
    other = await elements.create_element("deal", {"title": "Cellar"}, actor=SYSTEM)
    cookies = {"pw_session": await auth.create_session(boss, stage=auth.STAGE_FULL)}
    before = len(live.hub.subscriptions)
    async with httpx.AsyncClient(base_url=f"http://{served}", cookies=cookies, timeout=10) as http:
        async with http.stream("GET", f"/admin/live/deals/{deal.id}") as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert await asyncio.wait_for(anext(lines), 10) == "retry: 2000"
            await wait_until(lambda: _count(before + 1), timeout_s=10, what="the stream's subscription")
            await elements.add_comment("deal", other.id, "elsewhere", actor=Actor(boss.id, boss.role))
            entry = await elements.add_comment("deal", deal.id, "here", actor=Actor(boss.id, boss.role))
            notice = await next_notice(lines)
            assert (notice["event"], notice["data"]) == ("timeline", str(entry.id))  # not the other deal's
            assert "here" not in str(notice)  # a notice carries no text: the page fetches what it may show
        await wait_until(lambda: _count(before), timeout_s=10, what="the subscription to end with the client")
        assert boss.id not in live.hub.viewers

        assert (await http.get("/admin/live/offers/1")).status_code == 404
    async with httpx.AsyncClient(base_url=f"http://{served}", timeout=10) as anonymous:
        assert (await anonymous.get(f"/admin/live/deals/{deal.id}")).status_code in (302, 303)


async def test_an_employee_streams_only_their_elements_and_only_so_many_at_once(served, db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PIPEWRIGHT_MAX_SOCKETS_PER_TOKEN", "2")
    config.reload()
    await make_pipeline()
    maria = await make_user("Maria", role="employee")
    mine = await elements.create_element("deal", {"title": "Mine"}, actor=Actor(maria.id, "employee"))
    theirs = await elements.create_element("deal", {"title": "Theirs"}, actor=SYSTEM)
    cookies = {"pw_session": await auth.create_session(maria, stage=auth.STAGE_FULL)}
    async with httpx.AsyncClient(base_url=f"http://{served}", cookies=cookies, timeout=10) as http:
        assert (await http.get(f"/admin/live/deals/{theirs.id}")).status_code == 403
        async with http.stream("GET", f"/admin/live/deals/{mine.id}") as first, \
                http.stream("GET", f"/admin/live/deals/{mine.id}") as second:
            assert (first.status_code, second.status_code) == (200, 200)
            third = await http.get(f"/admin/live/deals/{mine.id}")
            assert third.status_code == 429 and "at most 2" in third.text


async def _count(expected: int) -> bool:
    return len(live.hub.subscriptions) == expected
