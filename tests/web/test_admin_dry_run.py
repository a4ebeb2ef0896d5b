"""The admin's "Try this stage with…" and the element page's explain panel, against `pipewright serve` with the demo
data: the board links each stage to its dry run, the admin picks a deal of the pipeline and reads each rule's outcome
in sentences while nothing is written for the deal; the element page loads why its rules did what they did."""

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from markupsafe import escape

from tests.support.admin import Admin, Server, log_in, new_page
from tests.web.test_admin_browser import log_in as browser_log_in


def rows(server: Server, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.db_path) as connection:
        return connection.execute(sql, args).fetchall()


@asynccontextmanager
async def logged_in(server: Server, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as http:
        assert (await log_in(http, server.create_admin(email))).status_code == 303
        yield http


def busiest_deal_stage(server: Server) -> tuple[int, int, str]:
    """(pipeline id, stage id, stage name) of the deal stage with the most enabled rules."""
    [(pipeline, stage, name)] = rows(server, """
        SELECT s.pipeline_id, s.id, s.name FROM stage s JOIN pipeline p ON p.id = s.pipeline_id
        JOIN rule r ON r.stage_id = s.id WHERE p.entity_type = 'deal' AND r.enabled
        GROUP BY s.id ORDER BY COUNT(*) DESC, s.id LIMIT 1""")
    return int(pipeline), int(stage), str(name)


def settled_deal(server: Server, pipeline: int) -> tuple[int, str]:
    """A deal of the pipeline none of whose runs is unfinished, so nothing of its own changes it meanwhile."""
    [(deal, title)] = rows(server, """
        SELECT d.id, d.title FROM deal d WHERE d.pipeline_id = ? AND NOT EXISTS (
          SELECT 1 FROM rule_run r WHERE r.element_type = 'deal' AND r.element_id = d.id
          AND r.status IN ('scheduled', 'queued', 'running', 'waiting')) ORDER BY d.id LIMIT 1""", pipeline)
    return int(deal), str(title)


def effects_of(server: Server, deal: int) -> tuple[int, ...]:
    return tuple(rows(server, f"SELECT COUNT(*) FROM {table} WHERE element_type = 'deal' AND element_id = ?",
                      deal)[0][0] for table in ("rule_run", "message", "timeline_entry", "task", "activity"))


async def test_trying_a_stage_with_a_deal_tells_each_rule_in_sentences_and_leaves_the_deal_alone(server: Server):
    pipeline, stage, name = busiest_deal_stage(server)
    async with logged_in(server, "dry-run@example.com") as http:
        board = await http.get(f"/admin/pipelines/{pipeline}")
        assert f'href="/admin/stages/{stage}/try"' in board.text
        deal, title = settled_deal(server, pipeline)
        before = effects_of(server, deal)

        picker = await http.get(f"/admin/stages/{stage}/try", params={"q": title})
        assert picker.status_code == 200
        assert f'<option value="{deal}">{escape(title)} (#{deal})</option>' in picker.text
        tried = await http.get(f"/admin/stages/{stage}/try", params={"element": str(deal)})

        assert tried.status_code == 200
        assert str(escape(f"If “{title}” entered “{name}” now")) in tried.text
        [(rule_count,)] = rows(server, "SELECT COUNT(*) FROM rule WHERE stage_id = ?", stage)
        sentences = re.findall(r'<li class="(?:acts|does-not-act)" id="dry-rule-\d+">\s*<p>(.*?)</p>', tried.text)
        assert len(sentences) == rule_count
        assert all(s.startswith("“") and (" would " in s or " is disabled" in s) for s in sentences), sentences
        assert effects_of(server, deal) == before

        refused = await http.get(f"/admin/stages/{stage}/try", params={"element": "nope"})
        assert refused.status_code == 422 and "is not an element id" in refused.text


async def test_the_element_page_explains_its_rules_in_a_panel(server: Server):
    [(deal, title)] = rows(server, "SELECT r.element_id, d.title FROM rule_run r JOIN deal d ON d.id = r.element_id "
                                   "WHERE r.element_type = 'deal' AND r.status = 'succeeded' ORDER BY r.id LIMIT 1")
    async with logged_in(server, "explain@example.com") as http:
        element = await http.get(f"/admin/deals/{deal}")
        assert f'hx-get="/admin/deals/{deal}/explain"' in element.text
        fragment = await http.get(f"/admin/deals/{deal}/explain", headers={"HX-Request": "true"})
        whole = await http.get(f"/admin/deals/{deal}/explain")

    assert fragment.status_code == 200 and fragment.text.lstrip().startswith("<section")
    assert "ran and succeeded at" in fragment.text and "Entered “" in fragment.text
    assert "<html" in whole.text and "Why the automation did what it did" in whole.text


async def test_in_a_browser_the_admin_tries_a_stage_from_the_board(browser, server: Server, admin: Admin):  # type: ignore[no-untyped-def]
    from playwright.async_api import expect

    pipeline, stage, name = busiest_deal_stage(server)
    page = await new_page(browser, server)
    await browser_log_in(page, admin)
    await page.goto(f"/admin/pipelines/{pipeline}")
    column = page.locator(f"#stage-{stage}")
    await column.get_by_role("link", name=re.compile("Try this stage with")).click()
    await expect(page.get_by_role("heading", name=f"Try “{name}” with…")).to_be_visible()
    await page.get_by_role("button", name="Try this stage").press("Enter")
    result = page.locator("#dry-run-result")
    await expect(result.get_by_role("heading", name=re.compile(f"entered “{name}” now"))).to_be_visible()
    await expect(result.locator("li").first).to_contain_text("“")
