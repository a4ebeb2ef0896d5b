"""No admin page is wider than the window: every page the demo admin can reach by links, at a phone's 375 px and a
laptop's 1366 px, has a document no wider than the viewport (nothing to scroll sideways; a wide board scrolls inside
its own area). The walk follows links from /admin and must reach every page route the admin has."""

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from tests.support.admin import Admin, Server, new_page
from tests.web.test_admin_browser import log_in

WIDTHS = (375, 1366)
# routes that are not pages: fragments htmx fetches, files, and pages before login (checked on their own below)
NOT_PAGES = {"/", "/login", "/login/code", "/setup", "/enrol", "/deals/{element_id:int}/runs", "/leads/{element_id:int}/runs",
             "/deals/{element_id:int}/card", "/leads/{element_id:int}/card", "/deals/board/stages/{stage_id:int}",
             "/leads/board/stages/{stage_id:int}", "/documents/{document_id:int}.pdf",
             # the live timeline and the explain panel, fetched into the element page by htmx (measured there)
             "/deals/{element_id:int}/timeline", "/leads/{element_id:int}/timeline",
             "/deals/{element_id:int}/explain", "/leads/{element_id:int}/explain"}
MAX_PAGES = 300
PER_ROUTE = 3
# the innermost elements that reach past the window's right edge, to name in a failure
WIDEST = """width => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > width + 1 && ![...e.children].some(c => c.getBoundingClientRect().right > width + 1))
  .slice(0, 3).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + String(e.className).replace(/ /g, '.') : ''))"""


def page_routes() -> dict[str, re.Pattern[str]]:
    """Every GET page route of the admin, as a pattern of its path."""
    from starlette.routing import Route

    from web.routes import admin

    routes = {}
    for route in admin().routes:
        if isinstance(route, Route) and "GET" in (route.methods or {"GET"}) and route.path not in NOT_PAGES:
            pattern = re.sub(r"\{[a-z_]+:int\}", r"\\d+", re.escape(route.path).replace(r"\{", "{").replace(r"\}", "}"))
            routes[route.path] = re.compile(f"^/admin{pattern}$")
    return routes


def route_of(path: str, routes: dict[str, re.Pattern[str]]) -> str | None:
    return next((name for name, pattern in routes.items() if pattern.match(path)), None)


async def too_wide(page: Any) -> list[str]:
    found = []
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 800})
        scroll = await page.evaluate("document.documentElement.scrollWidth")
        if scroll > width:
            culprits = await page.evaluate(WIDEST, width)
            found.append(f"{page.url} is {scroll} px wide at {width} px: {culprits}")
    return found


async def test_every_admin_page_fits_the_window_at_375_and_1366_px(browser, server: Server, admin: Admin) -> None:  # type: ignore[no-untyped-def]
    page = await new_page(browser, server)
    problems = await too_wide(page) if await page.goto("/admin/login") else []
    await log_in(page, admin)
    await expect(page.get_by_role("button", name="Log out")).to_have_count(1)

    routes = page_routes()
    seen_routes: dict[str, int] = {}  # route → pages of it walked (a few each: links differ between them)
    queue, visited = ["/admin"], set()
    while queue and len(visited) < MAX_PAGES:
        path = queue.pop(0)
        if path in visited:
            continue
        visited.add(path)
        answer = await page.goto(path)
        assert answer is not None and answer.ok, f"{path}: {answer.status if answer else 'no answer'}"
        route = route_of(urlsplit(page.url).path, routes)
        if route is None or seen_routes.get(route, 0) >= PER_ROUTE:
            continue
        seen_routes[route] = seen_routes.get(route, 0) + 1
        problems += await too_wide(page)
        for href in await page.eval_on_selector_all("a[href^='/admin']", "links => links.map(a => a.getAttribute('href'))"):
            target = href.split("#")[0]
            if target not in visited and seen_routes.get(route_of(urlsplit(target).path, routes) or "", 0) < PER_ROUTE:
                queue.append(target)
    assert problems == [], "\n".join(problems)
    assert sorted(set(routes) - set(seen_routes)) == [], "pages no link leads to"
